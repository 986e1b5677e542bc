package storage

import (
	"errors"
	"sync"
)

// HABackend is implemented by a physical backend that several servers can
// share and that can elect one of them active: it hands out a lock that one
// holder at a time owns. A backend that implements it but is configured
// without HA (ha_enabled = "false") reports HAEnabled false.
type HABackend interface {
	Backend
	HAEnabled() bool
	// LockWith returns a lock on key that, once held, advertises value
	// (the holder's addresses) to the servers that read it.
	LockWith(key, value string) (Lock, error)
}

// Lock is one contender for an HA lock.
type Lock interface {
	// Lock blocks until the lock is held or stopCh closes. Held, it returns
	// a channel that closes when the lock is lost (the holder could not
	// renew it in time, or another took it): the holder must stop acting as
	// the owner at once. Stopped, it returns nil and no error.
	Lock(stopCh <-chan struct{}) (<-chan struct{}, error)
	// Unlock releases a held lock; releasing a lock not held does nothing.
	Unlock() error
	// Value reports whether anyone holds the lock, and the holder's value.
	Value() (held bool, value string, err error)
}

// ErrLockHeld is returned by Lock when called again on a lock this
// contender already holds.
var ErrLockHeld = errors.New("the lock is already held by this contender")

// InmemHA is an in-memory backend with an HA lock, for tests: several cores
// in one process given the same InmemHA share its data and its locks, as
// servers share one database.
type InmemHA struct {
	*Inmem

	mu    sync.Mutex
	locks map[string]*inmemLockState
}

type inmemLockState struct {
	holder *inmemLock
	value  string
	lost   chan struct{} // closed when the holder loses the lock
	free   chan struct{} // closed when the lock is released
}

// NewInmemHA returns an empty in-memory backend with HA enabled.
func NewInmemHA() *InmemHA {
	return &InmemHA{Inmem: NewInmem(), locks: map[string]*inmemLockState{}}
}

// HAEnabled is always true.
func (b *InmemHA) HAEnabled() bool { return true }

// LockWith returns a contender for key.
func (b *InmemHA) LockWith(key, value string) (Lock, error) {
	return &inmemLock{b: b, key: key, value: value}, nil
}

// BreakLock takes key from its holder, as an expired lease would: the
// holder's lost channel closes and the lock is free. Tests use it.
func (b *InmemHA) BreakLock(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st := b.locks[key]; st != nil {
		b.releaseLocked(key, st)
	}
}

// Seize takes key from its holder (whose lost channel closes) for a new
// holder advertising value, in one step, and returns that holder's lock,
// to release with Unlock. Tests use it to take the lock from every server.
func (b *InmemHA) Seize(key, value string) Lock {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st := b.locks[key]; st != nil {
		b.releaseLocked(key, st)
	}
	l := &inmemLock{b: b, key: key, value: value}
	b.locks[key] = &inmemLockState{holder: l, value: value, lost: make(chan struct{}), free: make(chan struct{})}
	return l
}

func (b *InmemHA) releaseLocked(key string, st *inmemLockState) {
	delete(b.locks, key)
	close(st.lost)
	close(st.free)
}

type inmemLock struct {
	b          *InmemHA
	key, value string
}

func (l *inmemLock) Lock(stopCh <-chan struct{}) (<-chan struct{}, error) {
	for {
		l.b.mu.Lock()
		st := l.b.locks[l.key]
		if st == nil {
			st = &inmemLockState{holder: l, value: l.value, lost: make(chan struct{}), free: make(chan struct{})}
			l.b.locks[l.key] = st
			l.b.mu.Unlock()
			return st.lost, nil
		}
		if st.holder == l {
			l.b.mu.Unlock()
			return nil, ErrLockHeld
		}
		free := st.free
		l.b.mu.Unlock()
		select {
		case <-stopCh:
			return nil, nil
		case <-free:
		}
	}
}

func (l *inmemLock) Unlock() error {
	l.b.mu.Lock()
	defer l.b.mu.Unlock()
	if st := l.b.locks[l.key]; st != nil && st.holder == l {
		l.b.releaseLocked(l.key, st)
	}
	return nil
}

func (l *inmemLock) Value() (bool, string, error) {
	l.b.mu.Lock()
	defer l.b.mu.Unlock()
	if st := l.b.locks[l.key]; st != nil {
		return true, st.value, nil
	}
	return false, "", nil
}
