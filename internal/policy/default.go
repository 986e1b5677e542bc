package policy

// DefaultPolicy is the built-in "default" policy, attached to every token
// unless it is created without it. It lets a token manage itself and
// nothing else.
const DefaultPolicy = `# A token may read, renew and revoke itself.
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self"  { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }

# It may ask what it is allowed to do.
path "sys/capabilities-self"        { capabilities = ["update"] }
path "sys/internal/ui/resultant-acl" { capabilities = ["read"] }

# It may read its own identity entity.
path "identity/entity/id/{{identity.entity.id}}"     { capabilities = ["read"] }
path "identity/entity/name/{{identity.entity.name}}" { capabilities = ["read"] }

# It may renew and look up its leases.
path "sys/renew"         { capabilities = ["update"] }
path "sys/leases/renew"  { capabilities = ["update"] }
path "sys/leases/lookup" { capabilities = ["update"] }

# Its cubbyhole is its own.
path "cubbyhole/*" { capabilities = ["create", "read", "update", "delete", "list"] }

# Response wrapping and hashing helpers.
path "sys/wrapping/wrap"   { capabilities = ["update"] }
path "sys/wrapping/lookup" { capabilities = ["update"] }
path "sys/wrapping/unwrap" { capabilities = ["update"] }
path "sys/tools/hash"      { capabilities = ["update"] }
path "sys/tools/hash/*"    { capabilities = ["update"] }
`
