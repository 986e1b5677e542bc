package scan

import (
	"context"
	"path/filepath"
	"testing"
)

func TestTerraform(t *testing.T) {
	fs, err := NewDetector(DefaultConfig()).ScanDir(context.Background(), filepath.Join("testdata", "terraform"), DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range fs {
		got[f.RuleID+" "+f.File+" "+f.Match] = true
		if f.StartLine < 1 {
			t.Errorf("no line for %+v", f)
		}
	}
	want := []string{
		`terraform-s3-backend-unencrypted main.tf backend "s3"`,
		`terraform-hardcoded-secret main.tf secret_key = "k9Qw2ZxR7vB1nM4tY6uP0sLd3HfJ8gCa5eTiVoXy"`,
		`terraform-variable-not-sensitive main.tf variable "db_password"`,
		`terraform-variable-secret-default main.tf default = "Sup3r-S3cret-Pa55w0rd!"`,
		`terraform-output-not-sensitive main.tf output "db_password" = aws_db_instance.main.password`,
		`terraform-nonsensitive main.tf nonsensitive(var.api_token)`,
		`terraform-hardcoded-secret prod.tfvars admin_password = "Xq7!vB2#mN9pL4wZ"`,
		`terraform-state-secret terraform.tfstate random_password.db.result`,
		`terraform-state-secret terraform.tfstate aws_db_instance.main.password`,
		`terraform-state-secret terraform.tfstate tls_private_key.ssh.private_key_openssh`,
		`terraform-state-secret terraform.tfstate output.root_token`,
		`terraform-plan-secret plan.json aws_ssm_parameter.token.value`,
		`terraform-plan-secret plan.json var.db_password`,
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing: %s", w)
		}
	}
	notWant := []string{
		`terraform-variable-not-sensitive main.tf variable "api_token"`,
		`terraform-variable-not-sensitive main.tf variable "password_length"`,
		`terraform-output-not-sensitive main.tf output "db_password_safe" = aws_db_instance.main.password`,
		`terraform-state-secret terraform.tfstate output.db_endpoint`,
		`terraform-state-secret terraform.tfstate tls_private_key.ssh.public_key_openssh`,
		`terraform-plan-secret plan.json var.region`,
	}
	for _, w := range notWant {
		if got[w] {
			t.Errorf("false positive: %s", w)
		}
	}
	if t.Failed() {
		for k := range got {
			t.Log(k)
		}
	}
}
