// Package version holds Arca's own version and the Vault API level it speaks.
package version

// Arca is Arca's release version.
const Arca = "0.1.0"

// VaultAPI is the Vault API level Arca implements, reported as "version" by
// sys/seal-status and sys/health. Clients such as the Terraform provider gate
// features on it as semver, so it names the Vault release whose API we match
// rather than Arca's own version.
const VaultAPI = "1.21.0"

// String describes the build for humans.
func String() string { return "v" + Arca + " (Vault API " + VaultAPI + ")" }
