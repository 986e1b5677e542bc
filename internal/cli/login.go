package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/arcasec/arca/api"
)

var loginCommands = []*command{{path: []string{"login"}, synopsis: "Authenticate and store the token", args: "[TOKEN | key=value...]",
	help: "Logs in with an auth method and stores the token for the next commands (~/" + api.TokenFile + ").\n" +
		"-method=token (the default) takes the token as the argument, or prompts for it.\n" +
		"Other methods take key=value pairs; a value may be @file (the file's contents)\n" +
		"or - (read from stdin). See 'arca auth help <method>' for each method's keys:\n" +
		"  arca login -method=userpass username=alice          (prompts for the password)\n" +
		"  arca login -method=approle role_id=... secret_id=@secret-id.txt\n" +
		"  arca login -method=jwt role=ci jwt=@$ACTIONS_ID_TOKEN_FILE\n" +
		"  arca login -method=oidc role=dev                    (opens a browser)",
	flags: []flagSpec{
		strFlag("method", "token", "auth method: token, userpass, approle, jwt or oidc"),
		strFlag("path", "", "mount path of the method below auth/ (default: the method's name)"),
		boolFlag("no-store", false, "do not store the token in ~/"+api.TokenFile),
		boolFlag("token-only", false, "print only the token, and do not store it"),
		boolFlag("no-print", false, "print nothing; the token is still stored"),
	},
	run: runLogin,
}}

// loginHandler logs in with one kind of auth method: from the key=value
// arguments to an auth response.
type loginHandler struct {
	help  string
	login func(e *env, c *api.Client, mount string, kv map[string]string) (*api.Secret, error)
}

var loginHandlers = map[string]loginHandler{
	"token": {help: `Usage: arca login [-method=token] [TOKEN | -]

  Checks the token (auth/token/lookup-self) and stores it. Without TOKEN, or
  with -, the token is read from stdin (a prompt without echo on a terminal).`,
		login: loginToken},
	"userpass": {help: `Usage: arca login -method=userpass [-path=userpass] username=NAME [password=PASSWORD]

  Logs in at auth/<path>/login/<username>. Without password=, the password is
  asked for without echo (or read from stdin); password=- reads it from stdin.
  username defaults to $USER.`,
		login: loginUserpass},
	"approle": {help: `Usage: arca login -method=approle [-path=approle] role_id=ID [secret_id=SECRET]

  Logs in at auth/<path>/login. Values may be @file or - (stdin), e.g.
  secret_id=@/run/secrets/secret-id.`,
		login: loginPost("role_id")},
	"jwt": {help: `Usage: arca login -method=jwt [-path=jwt] role=ROLE jwt=TOKEN

  Logs in at auth/<path>/login with a signed JWT (a CI job's OIDC token, a
  Kubernetes service-account token). jwt=@file reads the token from a file.`,
		login: loginPost("jwt")},
	"oidc": {help: `Usage: arca login -method=oidc [-path=oidc] [role=ROLE] [key=value...]

  Logs in through the browser: a listener on 127.0.0.1:8250 takes the
  provider's redirect. Keys:
    role=ROLE              the role (default: the method's default_role)
    port=8250              the port to listen on
    listenaddress=127.0.0.1 the address to listen on
    callbackhost=localhost callbackport=PORT callbackmethod=http
                           the redirect_uri the provider sends the browser to
    skip_browser=true      print the URL instead of opening a browser`,
		login: loginOIDC},
}

func loginMethods() []string {
	names := make([]string, 0, len(loginHandlers))
	for n := range loginHandlers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func runLogin(e *env) error {
	method := e.str("method")
	h, ok := loginHandlers[method]
	if !ok {
		return usageError("unknown -method %q: use one of %s", method, strings.Join(loginMethods(), ", "))
	}
	mount := mountPath(e.str("path"))
	if mount == "" {
		mount = method
	}
	kv := map[string]string{}
	if method != "token" || len(e.args) != 1 || strings.Contains(e.args[0], "=") {
		data, err := parseKVArgs(e.args)
		if err != nil {
			return err
		}
		for k, v := range data {
			kv[k] = fmt.Sprint(v)
		}
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	// A login needs no token; a stale one must not be sent along.
	if method != "token" {
		c.SetToken("")
	}
	s, err := h.login(e, c, mount, kv)
	if err != nil {
		return err
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return fmt.Errorf("Error authenticating: the server answered without a token")
	}
	if e.flag("token-only") {
		fmt.Fprintln(stdout, s.Auth.ClientToken)
		return nil
	}
	if !e.flag("no-store") {
		if err := api.WriteTokenFile(s.Auth.ClientToken); err != nil {
			return fmt.Errorf("storing the token: %w", err)
		}
		for _, v := range []string{"ARCA_TOKEN", "VAULT_TOKEN"} {
			if os.Getenv(v) != "" {
				fmt.Fprintf(stderr, "WARNING! $%s is set and wins over the stored token; unset it to use the new one.\n", v)
				break
			}
		}
	}
	if e.flag("no-print") {
		return nil
	}
	if e.format != "table" || e.field != "" {
		return e.output(s)
	}
	if e.flag("no-store") {
		fmt.Fprintln(stdout, "Success! You are now authenticated. The token below was not stored (-no-store):\n"+
			"pass it with -token or $VAULT_TOKEN.")
	} else {
		fmt.Fprintln(stdout, "Success! You are now authenticated. The token information below is already\n"+
			"stored; you do not need to log in again. The next commands use this token.")
	}
	fmt.Fprintln(stdout)
	table(authTable(s.Auth))
	return nil
}

// loginToken checks a token and describes it as a login would.
func loginToken(e *env, c *api.Client, _ string, kv map[string]string) (*api.Secret, error) {
	token := kv["token"]
	if len(e.args) == 1 && !strings.Contains(e.args[0], "=") {
		token = e.args[0]
	}
	if token == "" || token == "-" {
		prompt := ""
		if token == "" {
			prompt = "Token (will be hidden): "
		}
		var err error
		if token, err = promptSecret(prompt); err != nil {
			return nil, err
		}
	}
	if token == "" {
		return nil, usageError("no token given")
	}
	c.SetToken(token)
	s, err := c.Read(background(), "auth/token/lookup-self", nil)
	if err != nil {
		return nil, fmt.Errorf("Error looking up token: %w", err)
	}
	if s == nil {
		return nil, fmt.Errorf("Error looking up token: empty response")
	}
	d := s.Data
	ttl, _ := strconv.ParseInt(formatValue(d["ttl"]), 10, 64)
	renewable, _ := d["renewable"].(bool)
	meta := map[string]string{}
	if m, ok := d["meta"].(map[string]any); ok {
		for k, v := range m {
			meta[k] = formatValue(v)
		}
	}
	s.Auth = &api.SecretAuth{
		ClientToken:      token,
		Accessor:         formatValue(d["accessor"]),
		Policies:         stringsOf(d["policies"]),
		TokenPolicies:    stringsOf(d["policies"]),
		IdentityPolicies: stringsOf(d["identity_policies"]),
		Metadata:         meta,
		LeaseDuration:    ttl,
		Renewable:        renewable,
		EntityID:         formatValue(d["entity_id"]),
	}
	if s.Auth.EntityID == "<nil>" {
		s.Auth.EntityID = ""
	}
	s.Data = nil
	return s, nil
}

func stringsOf(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		out = append(out, formatValue(e))
	}
	return out
}

func loginUserpass(_ *env, c *api.Client, mount string, kv map[string]string) (*api.Secret, error) {
	username := kv["username"]
	if username == "" {
		username = os.Getenv("USER")
	}
	if username == "" {
		return nil, usageError("userpass login needs username=NAME")
	}
	delete(kv, "username")
	if _, ok := kv["password"]; !ok {
		pw, err := promptSecret("Password (will be hidden): ")
		if err != nil {
			return nil, err
		}
		kv["password"] = pw
	}
	return loginWrite(c, "auth/"+mount+"/login/"+url.PathEscape(username), kv)
}

// loginPost is a login that posts the key=value pairs to auth/<path>/login;
// required names the one key it cannot do without.
func loginPost(required string) func(*env, *api.Client, string, map[string]string) (*api.Secret, error) {
	return func(_ *env, c *api.Client, mount string, kv map[string]string) (*api.Secret, error) {
		if kv[required] == "" {
			return nil, usageError("%s login needs %s=VALUE", mount, required)
		}
		if jwt, ok := kv["jwt"]; ok {
			kv["jwt"] = strings.TrimSpace(jwt) // a token file ends with a newline
		}
		return loginWrite(c, "auth/"+mount+"/login", kv)
	}
}

func loginWrite(c *api.Client, path string, kv map[string]string) (*api.Secret, error) {
	body := make(map[string]any, len(kv))
	for k, v := range kv {
		body[k] = v
	}
	s, err := c.Write(background(), path, body)
	if err != nil {
		return nil, fmt.Errorf("Error authenticating: %w", err)
	}
	return s, nil
}

// promptSecret reads one line: from the terminal without echo when stdin
// is one (after printing prompt to stderr), else from stdin.
func promptSecret(prompt string) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("reading from the terminal: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if prompt != "" {
		fmt.Fprint(stderr, prompt)
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", usageError("nothing to read on stdin")
	}
	return strings.TrimSpace(line), nil
}

// oidcCallbackTimeout bounds how long the browser flow waits for the
// provider's redirect.
var oidcCallbackTimeout = 5 * time.Minute

// loginOIDC runs the browser flow: a loopback listener takes the
// provider's redirect, whose state and code the method exchanges for a
// token.
func loginOIDC(_ *env, c *api.Client, mount string, kv map[string]string) (*api.Secret, error) {
	port := orValue(kv["port"], "8250")
	listenAddr := orValue(kv["listenaddress"], "127.0.0.1")
	ln, err := net.Listen("tcp", net.JoinHostPort(listenAddr, port))
	if err != nil {
		return nil, fmt.Errorf("Error listening for the OIDC callback on %s:%s: %w", listenAddr, port, err)
	}
	defer ln.Close()
	actualPort := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	redirectURI := fmt.Sprintf("%s://%s/oidc/callback", orValue(kv["callbackmethod"], "http"),
		net.JoinHostPort(orValue(kv["callbackhost"], "localhost"), orValue(kv["callbackport"], actualPort)))

	nonceBytes := make([]byte, 20)
	if _, err := rand.Read(nonceBytes); err != nil {
		return nil, fmt.Errorf("reading randomness: %w", err)
	}
	clientNonce := hex.EncodeToString(nonceBytes)
	role := kv["role"]
	s, err := c.Write(background(), "auth/"+mount+"/oidc/auth_url", map[string]any{
		"role": role, "redirect_uri": redirectURI, "client_nonce": clientNonce,
	})
	if err != nil {
		return nil, fmt.Errorf("Error getting the OIDC authorization URL: %w", err)
	}
	authURL := ""
	if s != nil {
		authURL, _ = s.Data["auth_url"].(string)
	}
	if authURL == "" {
		return nil, fmt.Errorf("Error authenticating: the server gave no authorization URL for role %q and redirect_uri %q; check the role's allowed_redirect_uris", role, redirectURI)
	}

	type result struct {
		secret *api.Secret
		err    error
	}
	done := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/oidc/callback", func(w http.ResponseWriter, r *http.Request) {
		// A provider redirects with a query (GET) or posts a form (form_post).
		q := url.Values{}
		for _, k := range []string{"error", "error_description", "state", "code", "id_token"} {
			q.Set(k, r.FormValue(k))
		}
		if msg := q.Get("error"); msg != "" {
			writeCallbackPage(w, false, "The provider refused the login: "+msg)
			sendOnce(done, result{err: fmt.Errorf("Error authenticating: the provider answered %q: %s", msg, q.Get("error_description"))})
			return
		}
		sec, err := c.Read(background(), "auth/"+mount+"/oidc/callback", url.Values{
			"state": {q.Get("state")}, "code": {q.Get("code")}, "id_token": {q.Get("id_token")}, "client_nonce": {clientNonce},
		})
		if err != nil {
			writeCallbackPage(w, false, "The login failed; the terminal says why.")
			sendOnce(done, result{err: fmt.Errorf("Error authenticating: %w", err)})
			return
		}
		writeCallbackPage(w, true, "You are logged in; you can close this window and return to the terminal.")
		sendOnce(done, result{secret: sec})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	if skip, _ := strconv.ParseBool(kv["skip_browser"]); skip {
		fmt.Fprintf(stderr, "Complete the login with your OIDC provider: open this link in your browser:\n\n    %s\n\n", authURL)
	} else {
		fmt.Fprintf(stderr, "Complete the login with your OIDC provider. Opening the browser at:\n\n    %s\n\n", authURL)
		if err := openBrowser(authURL); err != nil {
			fmt.Fprintf(stderr, "Could not open a browser (%v): open the link above yourself.\n\n", err)
		}
	}
	fmt.Fprintln(stderr, "Waiting for the OIDC callback...")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	timer := time.NewTimer(oidcCallbackTimeout)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.secret, r.err
	case <-ctx.Done():
		return nil, errors.New("Error authenticating: interrupted while waiting for the OIDC callback")
	case <-timer.C:
		return nil, fmt.Errorf("Error authenticating: no OIDC callback within %s", oidcCallbackTimeout)
	}
}

func sendOnce[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

func orValue(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func writeCallbackPage(w http.ResponseWriter, ok bool, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
	}
	title := "Arca login succeeded"
	if !ok {
		title = "Arca login failed"
	}
	fmt.Fprintf(w, "<!doctype html><title>%s</title><h1>%s</h1><p>%s</p>\n", title, title, html.EscapeString(msg))
}

// openBrowser opens url in the user's browser.
func openBrowser(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	return cmd.Start()
}
