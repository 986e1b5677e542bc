// Package transit holds tests that drive a running server's transit engine
// on a manual clock.
package transit
