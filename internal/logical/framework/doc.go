// Package framework lets a backend declare its paths instead of routing by
// hand: a pattern, typed fields with defaults and descriptions, and a handler
// per operation. Field validation and help come from those declarations.
//
// The named groups of a pattern are fields whose values come from the
// request path alone, because the path is what the ACL decided on: request
// data never fills or overrides them. Each group spans whole path segments
// (CheckPattern), so a literal segment such as "metadata/" never matches the
// front of a longer one.
package framework
