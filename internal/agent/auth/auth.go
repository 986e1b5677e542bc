// Package auth is the agent's auto-auth: it logs in with one method
// (approle, jwt, token_file), writes each new token to its sinks, keeps the
// token alive by renewing it at about two thirds of its TTL, and logs in
// again, with backoff, when it can no longer be renewed.
package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arcasec/arca/api"
)

// Method logs in. Each call reads its credentials afresh (a JWT file is
// re-read on every login, as a projected Kubernetes token rotates).
type Method interface {
	// Login returns the login response (its Auth block carries the token),
	// or, for a method whose config asks for wrap_ttl, the wrapped response.
	Login(ctx context.Context, c *api.Client) (*api.Secret, error)
}

// Sink receives each new token.
type Sink interface {
	// Write stores token; c (carrying that token) wraps it first when the
	// sink has a wrap_ttl.
	Write(ctx context.Context, c *api.Client, token string) error
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
	// OnWrapped, when set, is called once after a login made with the
	// method's wrap_ttl had its wrap info written to the sinks (OnToken is
	// not called then: the agent holds no token), so that exit_after_auth
	// can end the agent.
	OnWrapped func()
	Logger    *slog.Logger

	sinkGen atomic.Uint64  // bumped by each new token: older sink retries stop
	sinkWG  sync.WaitGroup // sink retries under way

	checkOnce sync.Once
	check     chan struct{} // CheckToken's requests
	lastCheck time.Time     // Run's goroutine only
	// checkRelogged: the current token came from a login a refused check
	// caused and no lookup has succeeded since; checksOff: a token fresh
	// from such a login was refused too, so the refusals mean it may not
	// look itself up (no default policy), not that it was revoked.
	checkRelogged, checksOff bool
	checkInterval            time.Duration // CheckInterval when zero (tests shorten it)
}

// CheckInterval is the least time between two checks CheckToken asks for.
const CheckInterval = 10 * time.Second

// CheckToken asks Run to check now whether the current token still works
// (a part was refused with 403: the token may have been revoked on the
// server). Run looks the token up (auth/token/lookup-self) at most once
// per CheckInterval and, when the lookup is refused, logs in again at
// once rather than at the next renewal. It never blocks.
func (h *Handler) CheckToken() {
	select {
	case h.checks() <- struct{}{}:
	default:
	}
}

func (h *Handler) checks() chan struct{} {
	h.checkOnce.Do(func() { h.check = make(chan struct{}, 1) })
	return h.check
}

// wait waits d (forever when d < 0) or until ctx ends (false). A check
// asked for meanwhile is made; when it finds the token refused, wait
// returns false with revoked set.
func (h *Handler) wait(ctx context.Context, rc *api.Client, d time.Duration) (elapsed, revoked bool) {
	var timer <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return false, false
		case <-timer:
			return true, false
		case <-h.checks():
			every := h.checkInterval
			if every == 0 {
				every = CheckInterval
			}
			if h.checksOff || time.Since(h.lastCheck) < every {
				continue
			}
			h.lastCheck = time.Now()
			_, err := rc.Read(ctx, "auth/token/lookup-self", nil)
			if !api.IsStatus(err, 403) {
				if err == nil {
					h.checkRelogged = false
				}
				continue
			}
			if h.checkRelogged {
				h.checksOff = true
				h.logger().Warn("auto-auth: a token fresh from a login cannot look itself up (auth/token/lookup-self); revoked tokens are now noticed at renewal only")
				continue
			}
			h.checkRelogged = true
			h.logger().Warn("auto-auth: the token is refused by the server (revoked?); logging in again")
			return false, true
		}
	}
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// Run logs in, then renews and re-authenticates until ctx ends (it then
// returns nil). A login that fails is logged with its error and retried
// with exponential backoff (MinBackoff doubling to MaxBackoff, less up to a
// quarter at random); with ExitOnError Run returns that error instead.
//
// A token is renewed (auth/token/renew-self) at about two thirds of its
// TTL, asking for its first TTL again. When a renewal fails, when the
// token is not renewable, or when a renewal grants less than was asked
// (its max TTL is near), Run logs in again at about two thirds of what
// remains. A periodic token renews forever; a token without TTL (a root
// token in a token file) is never renewed.
//
// A method with wrap_ttl yields a wrapping token the agent cannot use: its
// wrap info (JSON) is written to the sinks, Client keeps no token, OnToken
// is not called (OnWrapped is), and Run waits for ctx to end.
//
// A sink that cannot be written is logged and retried in the background
// until it succeeds or a newer token replaces the one it was given.
func (h *Handler) Run(ctx context.Context) error {
	if h.Client == nil || h.Method == nil {
		return errors.New("auto-auth: the handler needs a client and a method")
	}
	log := h.logger()
	bo := newBackoff(h.MinBackoff, h.MaxBackoff)
	if bo.min > bo.max {
		return fmt.Errorf("auto-auth: min_backoff %v is greater than max_backoff %v", bo.min, bo.max)
	}
	defer h.sinkWG.Wait()

	var current string
	exhausted := false
	for {
		if ctx.Err() != nil {
			return nil
		}
		s, err := h.Method.Login(ctx, h.Client)
		if err == nil {
			err = checkLogin(s)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if h.ExitOnError {
				log.Error("auto-auth: login failed; exit_on_err is set, giving up", "error", err)
				return err
			}
			wait := bo.next()
			log.Error("auto-auth: login failed; retrying", "error", err, "backoff", wait.Round(time.Millisecond).String())
			if !sleep(ctx, wait) {
				return nil
			}
			continue
		}
		bo.reset()

		if s.Auth == nil { // a wrapped login (checkLogin saw its wrap info)
			text, err := encodeWrapInfo(s.WrapInfo)
			if err != nil {
				return fmt.Errorf("auto-auth: encoding the wrap info: %w", err)
			}
			h.writeSinks(ctx, text, true)
			log.Info("auto-auth: logged in with wrap_ttl; the wrapping token went to the sinks (the agent cannot use it)",
				"wrap_ttl", s.WrapInfo.TTL)
			if h.OnWrapped != nil {
				h.OnWrapped()
			}
			<-ctx.Done()
			return nil
		}

		a := s.Auth
		repeat := a.ClientToken == current
		if !repeat {
			current = a.ClientToken
			h.Client.SetToken(current)
			h.writeSinks(ctx, current, false)
			log.Info("auto-auth: logged in", "accessor", a.Accessor, "ttl", a.LeaseDuration, "renewable", a.Renewable)
			if h.OnToken != nil {
				h.OnToken(current)
			}
		} else if exhausted {
			// The method gave the token it gave before (a token file not
			// yet replaced), and that token cannot be extended: use it
			// until it expires, then read the method again.
			ttl := seconds(a.LeaseDuration)
			log.Warn("auto-auth: the method returned the same token again, which cannot be extended; using it until it expires",
				"accessor", a.Accessor, "ttl", a.LeaseDuration)
			if ttl <= 0 {
				<-ctx.Done()
				return nil
			}
			if !sleep(ctx, ttl) {
				return nil
			}
			exhausted = false
			continue
		}
		exhausted = h.keepAlive(ctx, current, a)
	}
}

// checkLogin refuses a login answer that carries neither a token nor a
// wrapping token.
func checkLogin(s *api.Secret) error {
	switch {
	case s == nil:
		return errors.New("the login returned nothing")
	case s.Auth != nil && s.Auth.ClientToken != "":
		return nil
	case s.WrapInfo != nil && s.WrapInfo.Token != "":
		s.Auth = nil
		return nil
	}
	return errors.New("the login response carries no token")
}

// keepAlive renews token until it must be replaced, then returns; exhausted
// reports that the token could not be extended any further (not renewable,
// or near its max TTL) rather than that a renewal failed.
func (h *Handler) keepAlive(ctx context.Context, token string, a *api.SecretAuth) (exhausted bool) {
	log := h.logger()
	ttl := seconds(a.LeaseDuration)
	rc := h.Client.Clone()
	rc.SetToken(token)
	rc.SetWrapTTL("")
	if ttl <= 0 {
		log.Info("auto-auth: the token has no TTL; it is not renewed")
		h.wait(ctx, rc, -1) // until ctx ends or the token is refused
		return false
	}
	if !a.Renewable {
		wait := renewDelay(ttl)
		log.Info("auto-auth: the token is not renewable; logging in again before it expires", "in", wait.Round(time.Second).String())
		elapsed, _ := h.wait(ctx, rc, wait)
		return elapsed
	}
	orig := ttl
	for {
		if elapsed, _ := h.wait(ctx, rc, renewDelay(ttl)); !elapsed {
			return false
		}
		s, err := rc.Write(ctx, "auth/token/renew-self", map[string]any{"increment": int64(orig / time.Second)})
		if ctx.Err() != nil {
			return false
		}
		if err == nil && (s == nil || s.Auth == nil) {
			err = errors.New("the renewal response carries no auth block")
		}
		if err != nil {
			log.Warn("auto-auth: renewing the token failed; logging in again", "error", err)
			return false
		}
		got := seconds(s.Auth.LeaseDuration)
		log.Debug("auto-auth: renewed the token", "ttl", s.Auth.LeaseDuration)
		if got < orig { // capped: the max TTL is near, renewing cannot extend it
			wait := renewDelay(got)
			log.Info("auto-auth: the token is near its max TTL; logging in again before it expires", "ttl", s.Auth.LeaseDuration)
			sleep(ctx, wait)
			return true
		}
		ttl = got
	}
}

// writeSinks writes text to every sink; raw text (a wrapped login's wrap
// info) is written as is, never wrapped again. A failed sink is retried in
// the background until it succeeds, a newer token supersedes it, or ctx
// ends.
func (h *Handler) writeSinks(ctx context.Context, text string, raw bool) {
	gen := h.sinkGen.Add(1)
	for _, s := range h.Sinks {
		if err := h.writeSink(ctx, s, text, raw); err != nil {
			h.logger().Error("auto-auth: writing a sink failed; retrying", "error", err)
			h.sinkWG.Add(1)
			go h.retrySink(ctx, s, text, raw, gen)
		}
	}
}

func (h *Handler) writeSink(ctx context.Context, s Sink, text string, raw bool) error {
	if rw, ok := s.(interface{ WriteRaw(string) error }); ok && raw {
		return rw.WriteRaw(text)
	}
	return s.Write(ctx, h.Client, text)
}

func (h *Handler) retrySink(ctx context.Context, s Sink, text string, raw bool, gen uint64) {
	defer h.sinkWG.Done()
	bo := newBackoff(h.MinBackoff, h.MaxBackoff)
	for {
		if !sleep(ctx, bo.next()) || h.sinkGen.Load() != gen {
			return
		}
		err := h.writeSink(ctx, s, text, raw)
		if err == nil {
			h.logger().Info("auto-auth: wrote the sink after retrying")
			return
		}
		if ctx.Err() != nil {
			return
		}
		h.logger().Error("auto-auth: writing a sink failed; retrying", "error", err)
	}
}

// seconds converts a TTL in seconds.
func seconds(n int64) time.Duration { return time.Duration(n) * time.Second }

// renewDelay is about two thirds of ttl, less up to a tenth of it at
// random so that many agents do not renew in step.
func renewDelay(ttl time.Duration) time.Duration {
	d := ttl*2/3 - randDuration(ttl/10)
	if d < 100*time.Millisecond {
		d = 100 * time.Millisecond
	}
	return d
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// backoff is exponential: each wait doubles the last, capped at max, less
// up to a quarter at random.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) *backoff {
	if min <= 0 {
		min = time.Second
	}
	if max <= 0 {
		max = 5 * time.Minute
	}
	return &backoff{min: min, max: max}
}

// next returns the wait before the next attempt.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
		return b.cur
	}
	d := min(2*b.cur, b.max)
	d -= randDuration(d / 4)
	b.cur = max(d, b.min)
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// randDuration is uniform in [0, n).
func randDuration(n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0
	}
	return time.Duration(v.Int64())
}
