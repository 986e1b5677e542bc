package database

import (
	"context"
	"fmt"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// The steps of a rotation, in order. create stores a new password as
// pending; set gives it to the database user; test logs in with it; finish
// makes it the current credential. A step that fails leaves the current
// credential working, and the rotation is resumed later with the same
// pending password.
const (
	stepCreate = "create"
	stepSet    = "set"
	stepTest   = "test"
	stepFinish = "finish"
)

// Retry delays after a failed rotation: doubling from the first to the
// last.
const (
	firstRetryDelay = 10 * time.Second
	lastRetryDelay  = 10 * time.Minute
)

// target is the user the next rotation sets a password on: the same user
// for single-user, the one not in use for alternating-users.
func (r *staticRole) target() string {
	if r.Strategy != alternatingUsers {
		return r.Username
	}
	if r.Current == r.Username {
		return r.AlternateUsername
	}
	return r.Username
}

func (b *backend) step(role, step string) error {
	if b.failStep != nil {
		if err := b.failStep(role, step); err != nil {
			return fmt.Errorf("step %s: %w", step, err)
		}
	}
	return nil
}

// rotate runs a rotation of role name to a new password for user. The
// caller holds b.rotating and has loaded r.
func (b *backend) rotate(ctx context.Context, s logical.Storage, name string, r *staticRole, user string) error {
	p, cfg, err := b.connection(ctx, s, r.DBName)
	if err != nil {
		return err
	}
	dctx, cancel := withTimeout(ctx)
	defer cancel()
	key := staticRolePrefix + name

	// create: a pending rotation to the same user is resumed as it is, so
	// a password that may already be set is not lost.
	if r.Pending == nil || r.Pending.Username != user {
		if err := b.step(name, stepCreate); err != nil {
			return b.rotationFailed(ctx, s, name, r, err)
		}
		password, err := b.generatePassword(ctx, cfg.PasswordPolicy)
		if err != nil {
			return b.rotationFailed(ctx, s, name, r, err)
		}
		r.Pending = &pendingRotation{Username: user, Password: password, Step: stepCreate, Started: b.now()}
		if err := putJSON(ctx, s, key, r); err != nil {
			r.Pending = nil
			return b.rotationFailed(ctx, s, name, r, err)
		}
	}
	pending := r.Pending
	sub := substitution{name: user, password: pending.Password}

	if err := b.step(name, stepSet); err != nil {
		return b.rotationFailed(ctx, s, name, r, err)
	}
	if err := p.setPassword(dctx, r.RotationStatements, sub); err != nil {
		return b.rotationFailed(ctx, s, name, r, fmt.Errorf("setting the password of user %q: %w", user, err))
	}
	pending.Step = stepSet

	// From here on, a single-user role's database password is the pending
	// one: a failure sets the current one back.
	err = b.step(name, stepTest)
	if err == nil {
		if err = p.login(dctx, user, pending.Password); err != nil {
			err = fmt.Errorf("logging in as user %q with the new password: %w", user, err)
		}
	}
	if err == nil {
		pending.Step = stepTest
		err = b.step(name, stepFinish)
	}
	if err == nil {
		done := *r
		done.Current, done.Password, done.LastRotation = user, pending.Password, b.now()
		done.Pending, done.Failures, done.LastError, done.NextAttempt = nil, 0, "", time.Time{}
		if err = putJSON(ctx, s, key, &done); err == nil {
			*r = done
			return nil
		}
	}
	if r.Strategy == singleUser && r.Password != "" {
		if rerr := p.setPassword(dctx, r.RotationStatements, substitution{name: user, password: r.Password}); rerr != nil {
			b.logger.Error("a failed rotation could not set the current password back", "role", name, "error", rerr)
		}
	}
	return b.rotationFailed(ctx, s, name, r, err)
}

// rotationFailed records a failed rotation, keeping its pending password
// and scheduling the retry, and returns err.
func (b *backend) rotationFailed(ctx context.Context, s logical.Storage, name string, r *staticRole, err error) error {
	r.Failures++
	r.LastError = err.Error()
	delay := firstRetryDelay << min(r.Failures-1, 10)
	r.NextAttempt = b.now().Add(min(delay, lastRetryDelay))
	if perr := putJSON(ctx, s, staticRolePrefix+name, r); perr != nil {
		b.logger.Error("recording a failed rotation", "role", name, "error", perr)
	}
	b.logger.Warn("rotation of a static role failed; it will be retried", "role", name, "retry_at", r.NextAttempt, "error", err)
	return err
}

// rotateDue rotates every static role whose rotation is due, or whose
// failed rotation is due for a retry. It returns the first error; the
// other roles are still rotated.
func (b *backend) rotateDue(ctx context.Context, s logical.Storage) error {
	names, err := s.List(ctx, staticRolePrefix)
	if err != nil {
		return err
	}
	var first error
	for _, name := range names {
		if err := b.rotateIfDue(ctx, s, name); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (b *backend) rotateIfDue(ctx context.Context, s logical.Storage, name string) error {
	b.rotating.Lock()
	defer b.rotating.Unlock()
	r, err := loadStaticRole(ctx, s, name)
	if err != nil || r == nil {
		return err
	}
	now := b.now()
	if now.Before(r.NextAttempt) {
		return nil
	}
	due := !now.Before(r.nextRotation(now))
	// A failed rotation is retried once its backoff has passed, but a role
	// with a rotation_window is rotated only inside a window: its retries
	// wait for the next one.
	retry := (r.Pending != nil || r.Failures > 0) && (r.RotationSchedule == "" || r.RotationWindow == 0)
	if !due && !retry {
		return nil
	}
	user := r.target()
	if r.Pending != nil {
		user = r.Pending.Username
	}
	return b.rotate(ctx, s, name, r, user)
}
