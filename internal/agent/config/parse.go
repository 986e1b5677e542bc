package config

import "errors"

// Parse parses HCL or JSON config text; name is used in error messages.
// TODO(helper config): implement.
func Parse(src []byte, name string) (*Config, error) {
	return nil, errors.New("config: not implemented")
}
