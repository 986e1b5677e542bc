package sopsfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// ConfigFileName is the creation-rules file sops looks for.
const ConfigFileName = ".sops.yaml"

// Config is a .sops.yaml file.
type Config struct {
	CreationRules []CreationRule `yaml:"creation_rules"`
	// Dir is the directory the file was found in; rule paths are relative
	// to it.
	Dir string `yaml:"-"`
}

// CreationRule picks the keys and selection rule for new files.
type CreationRule struct {
	PathRegex         string         `yaml:"path_regex"`
	Age               stringOrList   `yaml:"age"`
	HCVaultTransitURI stringOrList   `yaml:"hc_vault_transit_uri"`
	KeyGroups         []ConfigGroup  `yaml:"key_groups"`
	ShamirThreshold   int            `yaml:"shamir_threshold"`
	UnencryptedSuffix string         `yaml:"unencrypted_suffix"`
	EncryptedSuffix   string         `yaml:"encrypted_suffix"`
	UnencryptedRegex  string         `yaml:"unencrypted_regex"`
	EncryptedRegex    string         `yaml:"encrypted_regex"`
	MACOnlyEncrypted  bool           `yaml:"mac_only_encrypted"`
	Unsupported       map[string]any `yaml:",inline"`
}

// ConfigGroup is one key group of a creation rule.
type ConfigGroup struct {
	Age         []string       `yaml:"age"`
	HCVault     []string       `yaml:"hc_vault"` // transit key URIs
	Unsupported map[string]any `yaml:",inline"`
}

// stringOrList accepts "a,b" or [a, b].
type stringOrList []string

func (s *stringOrList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		for _, p := range strings.Split(n.Value, ",") {
			if p = strings.TrimSpace(p); p != "" {
				*s = append(*s, p)
			}
		}
		return nil
	case yaml.SequenceNode:
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		*s = list
		return nil
	}
	return fmt.Errorf("line %d: expected a string or a list of strings", n.Line)
}

// FindConfig looks for .sops.yaml in dir and up to 100 parents.
func FindConfig(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for i := 0; i < 100; i++ {
		p := filepath.Join(dir, ConfigFileName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", os.ErrNotExist
}

// LoadConfig reads a .sops.yaml.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	abs, _ := filepath.Abs(path)
	c.Dir = filepath.Dir(abs)
	return &c, nil
}

// ErrNoMatchingRule means no creation rule matches the file.
var ErrNoMatchingRule = errors.New("error loading config: no matching creation rules found")

// RuleFor returns the first creation rule whose path_regex matches file,
// taken relative to the config's directory.
func (c *Config) RuleFor(file string) (*CreationRule, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	rel := abs
	if r, err := filepath.Rel(c.Dir, abs); err == nil && !strings.HasPrefix(r, "..") {
		rel = r
	}
	for i := range c.CreationRules {
		r := &c.CreationRules[i]
		if r.PathRegex == "" {
			return r, nil
		}
		re, err := regexp.Compile(r.PathRegex)
		if err != nil {
			return nil, fmt.Errorf("creation rule %d: path_regex: %w", i, err)
		}
		if re.MatchString(rel) {
			return r, nil
		}
	}
	return nil, ErrNoMatchingRule
}

// Keys returns the rule's key groups as master keys.
func (r *CreationRule) Keys() ([][]MasterKey, error) {
	if err := unsupportedKeys(r.Unsupported); err != nil {
		return nil, err
	}
	if len(r.KeyGroups) > 0 {
		var groups [][]MasterKey
		for i, g := range r.KeyGroups {
			if err := unsupportedKeys(g.Unsupported); err != nil {
				return nil, fmt.Errorf("key group %d: %w", i, err)
			}
			keys, err := configKeys(g.Age, g.HCVault)
			if err != nil {
				return nil, fmt.Errorf("key group %d: %w", i, err)
			}
			groups = append(groups, keys)
		}
		return groups, nil
	}
	keys, err := configKeys(r.Age, r.HCVaultTransitURI)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return [][]MasterKey{keys}, nil
}

// configKeys parses the age recipients and transit key URIs of one group.
func configKeys(ageRecipients, transitURIs []string) ([]MasterKey, error) {
	keys, err := ParseAgeRecipients(strings.Join(ageRecipients, ","))
	if err != nil {
		return nil, err
	}
	transit, err := ParseVaultTransitURIs(strings.Join(transitURIs, ","))
	if err != nil {
		return nil, err
	}
	return append(keys, transit...), nil
}

// Rule returns the rule's selection rule.
func (r *CreationRule) Rule() Rule {
	return Rule{UnencryptedSuffix: r.UnencryptedSuffix, EncryptedSuffix: r.EncryptedSuffix,
		UnencryptedRegex: r.UnencryptedRegex, EncryptedRegex: r.EncryptedRegex, MACOnlyEncrypted: r.MACOnlyEncrypted}
}

func unsupportedKeys(m map[string]any) error {
	for k := range m {
		switch k {
		case "pgp", "kms", "gcp_kms", "azure_keyvault", "hckms", "aws_profile", "merge":
			return fmt.Errorf("%s keys are not supported by arca file yet: use age recipients or transit keys (hc_vault_transit_uri)", k)
		}
	}
	return nil
}
