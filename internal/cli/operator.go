package cli

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/arcasec/arca/api"
)

func runStatus(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	st, err := c.SealStatus(background())
	if err != nil {
		return fmt.Errorf("Error checking seal status: %w", err)
	}
	var leader *api.LeaderStatus
	if !st.Sealed {
		// Best effort: an older server without sys/leader still has a status.
		leader, _ = c.Leader(background())
	}
	if err := printStatus(e.clientFlags, st, leader); err != nil {
		return err
	}
	if st.Sealed {
		return &exitError{code: 2, err: fmt.Errorf("")}
	}
	return nil
}

func printSealStatus(cf *clientFlags, st *api.SealStatus) error {
	return printStatus(cf, st, nil)
}

// printStatus prints the seal status and, when known, the HA state as
// vault status does.
func printStatus(cf *clientFlags, st *api.SealStatus, leader *api.LeaderStatus) error {
	// One flat object, as vault status prints: the seal status with
	// sys/leader's fields beside it.
	var v any = st
	if leader != nil {
		merged := map[string]any{}
		for _, part := range []any{st, leader} {
			raw, err := json.Marshal(part)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &merged); err != nil {
				return err
			}
		}
		v = merged
	}
	if done, err := printStructured(cf.format, v); done {
		return err
	}
	rows := [][2]string{
		{"Seal Type", st.Type},
		{"Initialized", fmt.Sprint(st.Initialized)},
		{"Sealed", fmt.Sprint(st.Sealed)},
	}
	if st.RecoverySeal {
		rows = append(rows, [2]string{"Total Recovery Shares", fmt.Sprint(st.Shares)}, [2]string{"Threshold", fmt.Sprint(st.Threshold)})
	} else {
		rows = append(rows, [2]string{"Total Shares", fmt.Sprint(st.Shares)}, [2]string{"Threshold", fmt.Sprint(st.Threshold)})
	}
	if st.Migration {
		rows = append(rows, [2]string{"Seal Migration in Progress", "true"})
	}
	if st.Sealed && st.Initialized {
		rows = append(rows, [2]string{"Unseal Progress", fmt.Sprintf("%d/%d", st.Progress, st.Threshold)}, [2]string{"Unseal Nonce", st.Nonce})
	}
	rows = append(rows, [2]string{"Version", st.Version}, [2]string{"Build Date", st.BuildDate}, [2]string{"Storage Type", st.StorageType})
	if !st.Sealed {
		rows = append(rows, [2]string{"Cluster Name", st.ClusterName}, [2]string{"Cluster ID", st.ClusterID})
		if leader == nil || !leader.HAEnabled {
			rows = append(rows, [2]string{"HA Enabled", "false"})
		} else {
			mode := "standby"
			if leader.IsSelf {
				mode = "active"
			}
			rows = append(rows, [2]string{"HA Enabled", "true"}, [2]string{"HA Cluster", leader.LeaderClusterAddress},
				[2]string{"HA Mode", mode})
			if leader.IsSelf {
				rows = append(rows, [2]string{"Active Since", leader.ActiveTime})
			} else {
				rows = append(rows, [2]string{"Active Node Address", leader.LeaderAddress})
			}
		}
	}
	table(rows)
	return nil
}

var operatorCommands = []*command{
	{path: []string{"operator", "init"}, synopsis: "Initialize the server: unseal (or recovery) keys and a root token", noArgs: true, run: operatorInit,
		flags: []flagSpec{
			intFlag("key-shares", 5, "number of key shares").withAliases("n"),
			intFlag("key-threshold", 3, "shares needed to unseal").withAliases("t"),
			intFlag("recovery-shares", 5, "number of recovery key shares (servers with an auto-unseal seal)"),
			intFlag("recovery-threshold", 3, "recovery key shares needed to authorise generate-root or a seal migration"),
			boolFlag("status", false, "only report whether the server is initialized (exit 0 yes, 2 no)"),
		}},
	{path: []string{"operator", "unseal"}, synopsis: "Enter an unseal key share", args: "[KEY]", maxArgs: 1, run: operatorUnseal,
		help: "Enters one unseal key share; without KEY it is read from stdin without echo.",
		flags: []flagSpec{
			boolFlag("reset", false, "discard the unseal progress"),
			boolFlag("migrate", false, "give the key for a seal migration (the configured seal differs from the stored one)"),
		}},
	{path: []string{"operator", "seal"}, synopsis: "Seal the server", noArgs: true, run: operatorSeal},
	{path: []string{"operator", "step-down"}, synopsis: "Make the active server of an HA cluster a standby", noArgs: true, run: operatorStepDown},
	{path: []string{"operator", "key-status"}, synopsis: "Print the active encryption key's term and use", noArgs: true, run: operatorKeyStatus},
	{path: []string{"operator", "rotate"}, synopsis: "Rotate the encryption key", noArgs: true, run: operatorRotate},
	{path: []string{"operator", "generate-root"}, synopsis: "Generate a new root token from unseal (or recovery) key shares", args: "[KEY]", maxArgs: 1,
		run: operatorGenerateRoot, flags: []flagSpec{
			boolFlag("init", false, "start a root token generation"),
			boolFlag("cancel", false, "cancel the generation under way"),
			boolFlag("status", false, "show the generation under way"),
			boolFlag("generate-otp", false, "print a new one-time pad for -init -otp"),
			strFlag("decode", "", "decode this encoded token with -otp (\"-\" reads it from stdin)"),
			strFlag("otp", "", "the one-time pad: with -init, encode the token with it; with -decode, decode with it"),
			strFlag("nonce", "", "the nonce of the generation (default: the one under way)"),
			strFlag("pgp-key", "", "not supported: use an OTP"),
		}},
	migrateCommand,
}

func operatorStepDown(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	if err := c.StepDown(background()); err != nil {
		return fmt.Errorf("Error stepping down: %w", err)
	}
	fmt.Fprintf(stdout, "Success! Stepped down: %s\n", c.Address())
	return nil
}

func operatorSeal(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	if err := c.Seal(background()); err != nil {
		return fmt.Errorf("Error sealing: %w", err)
	}
	fmt.Fprintln(stdout, "Success! Arca is sealed.")
	return nil
}

func operatorKeyStatus(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	s, err := c.Read(background(), "sys/key-status", nil)
	if err != nil {
		return fmt.Errorf("Error reading key status: %w", err)
	}
	if e.format != "table" {
		return e.output(s)
	}
	table([][2]string{{"Key Term", formatValue(s.Data["term"])}, {"Install Time", formatValue(s.Data["install_time"])}, {"Encryption Count", formatValue(s.Data["encryptions"])}})
	return nil
}

func operatorRotate(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	if _, err := c.Write(background(), "sys/rotate", nil); err != nil {
		return fmt.Errorf("Error rotating key: %w", err)
	}
	s, err := c.Read(background(), "sys/key-status", nil)
	if err != nil {
		return fmt.Errorf("Error reading key status: %w", err)
	}
	fmt.Fprintf(stdout, "Success! Rotated key\n\n")
	table([][2]string{{"Key Term", formatValue(s.Data["term"])}, {"Install Time", formatValue(s.Data["install_time"])}})
	return nil
}

func operatorInit(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	shares, threshold := e.num("key-shares"), e.num("key-threshold")
	recoveryShares, recoveryThreshold := e.num("recovery-shares"), e.num("recovery-threshold")
	if e.flag("status") {
		st, err := c.SealStatus(background())
		if err != nil {
			return err
		}
		if !st.Initialized {
			fmt.Fprintln(stdout, "Arca is not initialized")
			return &exitError{code: 2, err: fmt.Errorf("")}
		}
		fmt.Fprintln(stdout, "Arca is initialized")
		return nil
	}
	st, err := c.SealStatus(background())
	if err != nil {
		return fmt.Errorf("Error checking seal status: %w", err)
	}
	// Each seal takes its own kind of shares. As with vault, the
	// recovery flags are dropped for a Shamir seal, and -key-shares,
	// when given for an auto-unseal seal, goes to the server, which
	// names it in its refusal.
	var req api.InitRequest
	if st.RecoverySeal {
		req.RecoveryShares, req.RecoveryThreshold = recoveryShares, recoveryThreshold
		if e.set("key-shares") || e.set("key-threshold") {
			req.SecretShares, req.SecretThreshold = shares, threshold
		}
	} else {
		req.SecretShares, req.SecretThreshold = shares, threshold
	}
	res, err := c.InitWith(background(), req)
	if err != nil {
		return fmt.Errorf("Error initializing: %w", err)
	}
	if st.RecoverySeal {
		return printRecoveryInit(e.clientFlags, res, recoveryShares, recoveryThreshold)
	}
	if done, err := printStructured(e.format, map[string]any{"unseal_keys_b64": res.KeysBase64, "unseal_keys_hex": res.Keys,
		"unseal_shares": shares, "unseal_threshold": threshold, "root_token": res.RootToken}); done {
		return err
	}
	for i, k := range res.KeysBase64 {
		fmt.Fprintf(stdout, "Unseal Key %d: %s\n", i+1, k)
	}
	fmt.Fprintf(stdout, "\nInitial Root Token: %s\n\n", res.RootToken)
	fmt.Fprintf(stdout, "Arca is initialized: %d unseal key shares above, any %d of which unseal it.\n"+
		"Give each share to a different person and keep them apart: Arca starts sealed\n"+
		"after every restart or seal, and answers no request until %d shares are entered.\n"+
		"The root token can do anything; revoke it once you have other ways in.\n", shares, threshold, threshold)
	return nil
}

func operatorUnseal(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	reset, migrate := e.flag("reset"), e.flag("migrate")
	key := e.arg(0)
	if key == "" && !reset {
		if key, err = promptSecret("Unseal Key (will be hidden): "); err != nil || key == "" {
			return usageError("no unseal key given")
		}
	}
	var st *api.SealStatus
	if migrate && !reset {
		st, err = c.UnsealMigrate(background(), key)
	} else {
		st, err = c.Unseal(background(), key, reset)
	}
	if err != nil {
		return fmt.Errorf("Error unsealing: %w", err)
	}
	return printSealStatus(e.clientFlags, st)
}

// printRecoveryInit prints what init answers on a server with an
// auto-unseal seal: recovery keys and the root token.
func printRecoveryInit(cf *clientFlags, res *api.InitResponse, shares, threshold int) error {
	out := map[string]any{"unseal_keys_b64": []string{}, "unseal_keys_hex": []string{}, "unseal_shares": 1, "unseal_threshold": 1,
		"recovery_keys_b64": res.RecoveryKeysBase64, "recovery_keys_hex": res.RecoveryKeys,
		"recovery_keys_shares": shares, "recovery_keys_threshold": threshold, "root_token": res.RootToken}
	if done, err := printStructured(cf.format, out); done {
		return err
	}
	for i, k := range res.RecoveryKeysBase64 {
		fmt.Fprintf(stdout, "Recovery Key %d: %s\n", i+1, k)
	}
	fmt.Fprintf(stdout, "\nInitial Root Token: %s\n\n", res.RootToken)
	fmt.Fprintf(stdout, "Arca is initialized and unsealed by its seal, which also unseals it after every restart.\n"+
		"The %d recovery key shares above do not unseal it: any %d of them authorise\n"+
		"`arca operator generate-root` and seal migration. Give each to a different person.\n", len(res.RecoveryKeysBase64), threshold)
	return nil
}

func operatorGenerateRoot(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	otp, nonce := e.str("otp"), e.str("nonce")
	if e.str("pgp-key") != "" {
		return usageError("-pgp-key is not supported: Arca encodes the root token with an OTP")
	}
	ctx := background()
	switch {
	case e.flag("generate-otp"):
		st, err := c.GenerateRootStatus(ctx)
		if err != nil {
			return fmt.Errorf("Error getting root generation status: %w", err)
		}
		pad, err := randomBase62(st.OTPLength)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, pad)
		return nil
	case e.str("decode") != "":
		if otp == "" {
			return usageError("-decode needs the -otp the generation was started with")
		}
		encoded := e.str("decode")
		if encoded == "-" {
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && line == "" {
				return usageError("no encoded token on stdin")
			}
			encoded = line
		}
		token, err := api.DecodeRootToken(encoded, otp)
		if err != nil {
			return fmt.Errorf("Error decoding the root token: %w", err)
		}
		if done, err := printStructured(e.format, map[string]string{"token": token}); done {
			return err
		}
		fmt.Fprintln(stdout, token)
		return nil
	case e.flag("cancel"):
		if err := c.GenerateRootCancel(ctx); err != nil {
			return fmt.Errorf("Error canceling root token generation: %w", err)
		}
		fmt.Fprintln(stdout, "Success! Root token generation canceled (if it was started)")
		return nil
	case e.flag("status"):
		st, err := c.GenerateRootStatus(ctx)
		if err != nil {
			return fmt.Errorf("Error getting root generation status: %w", err)
		}
		return printGenerateRoot(e.clientFlags, st)
	case e.flag("init"):
		st, err := c.GenerateRootInit(ctx, otp)
		if err != nil {
			return fmt.Errorf("Error initializing root generation: %w", err)
		}
		if err := printGenerateRoot(e.clientFlags, st); err != nil {
			return err
		}
		if st.OTP != "" && e.format == "table" {
			fmt.Fprintln(stdout, "\nA one-time pad (OTP) was generated for you and is shown above. Keep it:\n"+
				"`arca operator generate-root -decode=<encoded token> -otp=<OTP>` needs it at the end.")
		}
		return nil
	}
	key := e.arg(0)
	if key == "" {
		if key, err = promptSecret("Unseal Key (will be hidden): "); err != nil || key == "" {
			return usageError("no key given")
		}
	}
	if nonce == "" {
		st, err := c.GenerateRootStatus(ctx)
		if err != nil {
			return fmt.Errorf("Error getting root generation status: %w", err)
		}
		if !st.Started {
			return usageError("no root token generation is in progress: start one with -init")
		}
		nonce = st.Nonce
	}
	st, err := c.GenerateRootUpdate(ctx, key, nonce)
	if err != nil {
		return fmt.Errorf("Error posting unseal key: %w", err)
	}
	return printGenerateRoot(e.clientFlags, st)
}

func printGenerateRoot(cf *clientFlags, st *api.GenerateRootStatus) error {
	if done, err := printStructured(cf.format, st); done {
		return err
	}
	rows := [][2]string{
		{"Nonce", st.Nonce},
		{"Started", fmt.Sprint(st.Started)},
		{"Progress", fmt.Sprintf("%d/%d", st.Progress, st.Required)},
		{"Complete", fmt.Sprint(st.Complete)},
	}
	if st.OTP != "" {
		rows = append(rows, [2]string{"OTP", st.OTP})
	}
	if st.OTPLength > 0 {
		rows = append(rows, [2]string{"OTP Length", fmt.Sprint(st.OTPLength)})
	}
	if st.EncodedToken != "" {
		rows = append(rows, [2]string{"Encoded Token", st.EncodedToken})
	}
	table(rows)
	return nil
}

// randomBase62 returns n characters drawn uniformly from [0-9A-Za-z] with
// crypto/rand, the alphabet of a root token generation's one-time pad.
func randomBase62(n int) (string, error) {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	out := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range out {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("reading randomness: %w", err)
		}
		out[i] = alphabet[v.Int64()]
	}
	return string(out), nil
}
