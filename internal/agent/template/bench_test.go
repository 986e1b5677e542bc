package template

import "testing"

// BenchmarkExecute renders a typical agent template (a KV v2 secret, a set
// of database credentials, a few helpers) from a source that answers at
// once: the template's own cost per render.
func BenchmarkExecute(b *testing.B) {
	tmpl, err := Parse("bench.tmpl", `{{ with secret "secret/data/app/db" }}
DB_USER={{ .Data.data.user }}
DB_PASSWORD={{ .Data.data.password | toJSON }}
DB_CONFIG={{ .Data.data.json | parseJSON | toJSON | base64Encode }}
{{ end }}{{ with secret "database/creds/readonly" }}
RO_USER={{ .Data.username }}
RO_PASSWORD={{ .Data.password }}
RO_LEASE={{ .LeaseID }} {{ .LeaseDuration }}
{{ end }}{{ range secrets "secret/metadata/" }}{{ . | toUpper }},{{ end }}
`, Options{ErrorOnMissingKey: true})
	if err != nil {
		b.Fatal(err)
	}
	src := testSource()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tmpl.Execute(src); err != nil {
			b.Fatal(err)
		}
	}
}
