package core

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/passpolicy"
)

// The sys/policies/password paths: named password policies, which engines
// generate passwords from, and a password generated on request.

// passwordPolicyPrefix is where password policies are kept behind the barrier.
const passwordPolicyPrefix = "sys/password_policy/"

// Engines hand their system view to passpolicy.FromPolicy.
var _ passpolicy.Source = logical.SystemView(nil)

// storedPasswordPolicy is a password policy as stored: its text as written.
type storedPasswordPolicy struct {
	Policy string `json:"policy"`
}

var passwordPolicyFields = map[string]*fw.FieldSchema{
	"name":   {Type: fw.TypeString, Description: "the name of the password policy"},
	"policy": {Type: fw.TypeString, Description: "the password policy, in HCL or JSON, or base64 of either"},
}

func (b *systemBackend) passwordPolicyPaths() []*fw.Path {
	rd, up, del, list := logical.ReadOperation, logical.UpdateOperation, logical.DeleteOperation, logical.ListOperation
	type opmap = map[logical.Operation]fw.OperationFunc
	return []*fw.Path{
		{Pattern: "policies/password/?", Operations: opmap{rd: b.listPasswordPolicies, list: b.listPasswordPolicies}},
		{Pattern: "policies/password/(?P<name>[^/]+)/generate", Fields: passwordPolicyFields, Operations: opmap{rd: b.generatePassword}},
		{Pattern: "policies/password/(?P<name>.+)", Fields: passwordPolicyFields, Operations: opmap{rd: b.readPasswordPolicy, up: b.writePasswordPolicy, del: b.deletePasswordPolicy}},
	}
}

// passwordPolicyName returns the name the path gave, or a 400 naming the
// problem.
func passwordPolicyName(d *fw.FieldData) (string, error) {
	name := d.String("name")
	return name, checkPasswordPolicyName(name)
}

// checkPasswordPolicyName refuses names that are not one path segment of
// valid UTF-8: a slash would make generate and list ambiguous, and storage
// keys are text.
func checkPasswordPolicyName(name string) error {
	switch {
	case name == "":
		return logical.BadRequest("missing password policy name")
	case !utf8.ValidString(name):
		return logical.BadRequest("invalid password policy name %q: a name must be valid UTF-8", name)
	case strings.Contains(name, "/"):
		return logical.BadRequest("invalid password policy name %q: a name cannot contain a slash", name)
	}
	return nil
}

func (b *systemBackend) writePasswordPolicy(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name, err := passwordPolicyName(d)
	if err != nil {
		return nil, err
	}
	text := d.String("policy")
	if text == "" {
		return nil, logical.BadRequest("missing policy: give the password policy text in the policy field")
	}
	// Clients may send the policy base64-encoded to avoid escaping; HCL and
	// JSON policies always hold characters outside base64's alphabet.
	if decoded, err := base64.StdEncoding.DecodeString(text); err == nil {
		text = string(decoded)
	}
	if _, err := b.core.passwordPolicies.parse(name, text); err != nil {
		return nil, logical.BadRequest("invalid password policy: %v", err)
	}
	if err := b.core.putJSON(ctx, passwordPolicyPrefix+name, storedPasswordPolicy{Policy: text}); err != nil {
		return nil, fmt.Errorf("storing password policy %q: %w", name, err)
	}
	return nil, nil
}

func (b *systemBackend) readPasswordPolicy(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name, err := passwordPolicyName(d)
	if err != nil {
		return nil, err
	}
	stored, err := b.core.passwordPolicyText(ctx, name)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"policy": stored}}, nil
}

func (b *systemBackend) deletePasswordPolicy(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name, err := passwordPolicyName(d)
	if err != nil {
		return nil, err
	}
	if err := b.core.barrier.Delete(ctx, passwordPolicyPrefix+name); err != nil {
		return nil, fmt.Errorf("deleting password policy %q: %w", name, err)
	}
	b.core.passwordPolicies.forget(name)
	return nil, nil
}

func (b *systemBackend) listPasswordPolicies(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	keys, err := b.core.barrier.List(ctx, passwordPolicyPrefix)
	if err != nil {
		return nil, fmt.Errorf("listing password policies: %w", err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	sort.Strings(keys)
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

func (b *systemBackend) generatePassword(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name, err := passwordPolicyName(d)
	if err != nil {
		return nil, err
	}
	password, err := b.core.GeneratePasswordFromPolicy(ctx, name)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"password": password}}, nil
}

// passwordPolicyText returns the stored text of the named password policy,
// or a 404 when there is none.
func (c *Core) passwordPolicyText(ctx context.Context, name string) (string, error) {
	if err := checkPasswordPolicyName(name); err != nil {
		return "", err
	}
	var stored storedPasswordPolicy
	found, err := c.getJSON(ctx, passwordPolicyPrefix+name, &stored)
	if err != nil {
		return "", fmt.Errorf("reading password policy %q: %w", name, err)
	}
	if !found {
		return "", logical.Errorf(http.StatusNotFound, "no password policy named %q", name)
	}
	return stored.Policy, nil
}

// GeneratePasswordFromPolicy implements logical.SystemView: a new password
// from the named password policy. The error is a 404 when there is no such
// policy.
func (c *Core) GeneratePasswordFromPolicy(ctx context.Context, name string) (string, error) {
	text, err := c.passwordPolicyText(ctx, name)
	if err != nil {
		return "", err
	}
	p, err := c.passwordPolicies.parse(name, text)
	if err != nil {
		return "", fmt.Errorf("the stored password policy %q no longer parses: %w", name, err)
	}
	password, err := p.Generate(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generating a password from policy %q: %w", name, err)
	}
	return password, nil
}

// GeneratePasswordFromPolicy implements logical.SystemView for a mount's
// backend: password policies are shared by every mount.
func (s *mountSystemView) GeneratePasswordFromPolicy(ctx context.Context, name string) (string, error) {
	return s.core.GeneratePasswordFromPolicy(ctx, name)
}

// passwordPolicyCache keeps parsed password policies by name, with the text
// each was parsed from: parsing checks how often a candidate meets the rules,
// which is too much work to repeat for every password. The stored text stays
// the authority; a policy is parsed again whenever its text changed.
type passwordPolicyCache struct {
	mu     sync.Mutex
	byName map[string]parsedPasswordPolicy
}

type parsedPasswordPolicy struct {
	text   string
	policy *passpolicy.Policy
}

// maxCachedPasswordPolicies bounds the cache; past it, the cache starts over.
const maxCachedPasswordPolicies = 1024

// parse returns the named policy parsed from text.
func (pc *passwordPolicyCache) parse(name, text string) (*passpolicy.Policy, error) {
	pc.mu.Lock()
	cached, ok := pc.byName[name]
	pc.mu.Unlock()
	if ok && cached.text == text {
		return cached.policy, nil
	}
	p, err := passpolicy.Parse(text)
	if err != nil {
		return nil, err
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.byName == nil || len(pc.byName) >= maxCachedPasswordPolicies {
		pc.byName = map[string]parsedPasswordPolicy{}
	}
	pc.byName[name] = parsedPasswordPolicy{text: text, policy: p}
	return p, nil
}

func (pc *passwordPolicyCache) forget(name string) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	delete(pc.byName, name)
}
