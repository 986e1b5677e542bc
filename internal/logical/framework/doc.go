// Package framework lets a backend declare its paths instead of routing by
// hand: a pattern, typed fields with defaults and descriptions, and a handler
// per operation. Field validation and help come from those declarations.
package framework
