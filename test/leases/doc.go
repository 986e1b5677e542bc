// Package leases holds tests of the lease manager through a running server
// and the Vault Go client, with a stub leasing engine on a manual clock.
package leases
