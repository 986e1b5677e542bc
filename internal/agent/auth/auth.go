// Package auth is the agent's auto-auth: it logs in with one method
// (approle, jwt, token_file), writes each new token to its sinks, keeps the
// token alive by renewing it at about two thirds of its TTL, and logs in
// again, with backoff, when it can no longer be renewed.
package auth

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/arcasec/arca/api"
	"github.com/arcasec/arca/internal/agent/config"
)

// Method logs in. Each call reads its credentials afresh (a JWT file is
// re-read on every login, as a projected Kubernetes token rotates).
type Method interface {
	// Login returns the login response (its Auth block carries the token),
	// or, for a method whose config asks for wrap_ttl, the wrapped response.
	Login(ctx context.Context, c *api.Client) (*api.Secret, error)
}

// NewMethod builds the method an auto_auth stanza names; an unknown type or
// a missing required config field is an error naming it.
func NewMethod(m *config.Method) (Method, error) {
	return nil, errors.New("auth: not implemented")
}

// Sink receives each new token.
type Sink interface {
	// Write stores token; c (carrying that token) wraps it first when the
	// sink has a wrap_ttl.
	Write(ctx context.Context, c *api.Client, token string) error
}

// NewSink builds a sink from its stanza.
func NewSink(s *config.Sink) (Sink, error) {
	return nil, errors.New("auth: not implemented")
}

// Handler runs auto-auth.
type Handler struct {
	Client     *api.Client // the agent's client; Handler sets its token
	Method     Method
	Sinks      []Sink
	MinBackoff time.Duration // 1s when zero
	MaxBackoff time.Duration // 5m when zero
	// ExitOnError makes Run return the first login error instead of
	// retrying.
	ExitOnError bool
	// OnToken is called (synchronously, after the sinks were written and
	// Client carries it) for every new token.
	OnToken func(token string)
	Logger  *slog.Logger
}

// Run logs in, then renews and re-authenticates until ctx ends.
func (h *Handler) Run(ctx context.Context) error {
	return errors.New("auth: not implemented")
}
