package cli

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/arcasec/arca/api"
)

func runStatus(args []string) int {
	cf := newClientFlags("status")
	return runCommand(func() error {
		c, err := cf.setup(args)
		if err != nil {
			return err
		}
		st, err := c.SealStatus(background())
		if err != nil {
			return fmt.Errorf("Error checking seal status: %w", err)
		}
		if err := printSealStatus(cf, st); err != nil {
			return err
		}
		if st.Sealed {
			return &exitError{code: 2, err: fmt.Errorf("")}
		}
		return nil
	})
}

func printSealStatus(cf *clientFlags, st *api.SealStatus) error {
	switch cf.format {
	case "json":
		return printJSON(st)
	case "yaml":
		return printYAML(st)
	}
	rows := [][2]string{
		{"Seal Type", st.Type},
		{"Initialized", fmt.Sprint(st.Initialized)},
		{"Sealed", fmt.Sprint(st.Sealed)},
		{"Total Shares", fmt.Sprint(st.Shares)},
		{"Threshold", fmt.Sprint(st.Threshold)},
	}
	if st.Sealed && st.Initialized {
		rows = append(rows, [2]string{"Unseal Progress", fmt.Sprintf("%d/%d", st.Progress, st.Threshold)}, [2]string{"Unseal Nonce", st.Nonce})
	}
	rows = append(rows, [2]string{"Version", st.Version}, [2]string{"Build Date", st.BuildDate}, [2]string{"Storage Type", st.StorageType})
	if !st.Sealed {
		rows = append(rows, [2]string{"Cluster Name", st.ClusterName}, [2]string{"Cluster ID", st.ClusterID}, [2]string{"HA Enabled", "false"})
	}
	table(rows)
	return nil
}

func runOperator(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: arca operator init|unseal|seal|key-status|rotate [flags]")
		return 1
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "init":
		return operatorInit(rest)
	case "unseal":
		return operatorUnseal(rest)
	case "seal":
		return simpleWrite("operator seal", rest, func(cf *clientFlags, c *api.Client) error {
			if err := c.Seal(background()); err != nil {
				return fmt.Errorf("Error sealing: %w", err)
			}
			fmt.Fprintln(stdout, "Success! Arca is sealed.")
			return nil
		})
	case "key-status":
		return simpleWrite("operator key-status", rest, func(cf *clientFlags, c *api.Client) error {
			s, err := c.Read(background(), "sys/key-status", nil)
			if err != nil {
				return fmt.Errorf("Error reading key status: %w", err)
			}
			if cf.format != "table" {
				return cf.output(s)
			}
			table([][2]string{{"Key Term", formatValue(s.Data["term"])}, {"Install Time", formatValue(s.Data["install_time"])}, {"Encryption Count", formatValue(s.Data["encryptions"])}})
			return nil
		})
	case "rotate":
		return simpleWrite("operator rotate", rest, func(cf *clientFlags, c *api.Client) error {
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
		})
	}
	fmt.Fprintf(stderr, "Error: unknown operator subcommand %q\n", sub)
	return 1
}

// simpleWrite runs a command that takes only the client flags.
func simpleWrite(name string, args []string, fn func(cf *clientFlags, c *api.Client) error) int {
	cf := newClientFlags(name)
	return runCommand(func() error {
		if err := cf.parse(args); err != nil {
			return err
		}
		if cf.fs.NArg() > 0 {
			return usageError("%s takes no arguments", name)
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		return fn(cf, c)
	})
}

func operatorInit(args []string) int {
	cf := newClientFlags("operator init")
	shares := cf.fs.Int("key-shares", 5, "number of key shares")
	threshold := cf.fs.Int("key-threshold", 3, "shares needed to unseal")
	cf.fs.IntVar(shares, "n", 5, "alias of -key-shares")
	cf.fs.IntVar(threshold, "t", 3, "alias of -key-threshold")
	status := cf.fs.Bool("status", false, "only report whether the server is initialized (exit 0 yes, 2 no)")
	return runCommand(func() error {
		c, err := cf.setup(args)
		if err != nil {
			return err
		}
		if *status {
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
		res, err := c.Init(background(), *shares, *threshold)
		if err != nil {
			return fmt.Errorf("Error initializing: %w", err)
		}
		switch cf.format {
		case "json":
			return printJSON(map[string]any{"unseal_keys_b64": res.KeysBase64, "unseal_keys_hex": res.Keys, "unseal_shares": *shares, "unseal_threshold": *threshold, "root_token": res.RootToken})
		case "yaml":
			return printYAML(map[string]any{"unseal_keys_b64": res.KeysBase64, "unseal_keys_hex": res.Keys, "unseal_shares": *shares, "unseal_threshold": *threshold, "root_token": res.RootToken})
		}
		for i, k := range res.KeysBase64 {
			fmt.Fprintf(stdout, "Unseal Key %d: %s\n", i+1, k)
		}
		fmt.Fprintf(stdout, "\nInitial Root Token: %s\n\n", res.RootToken)
		fmt.Fprintf(stdout, "Arca is initialized: %d unseal key shares above, any %d of which unseal it.\n"+
			"Give each share to a different person and keep them apart: Arca starts sealed\n"+
			"after every restart or seal, and answers no request until %d shares are entered.\n"+
			"The root token can do anything; revoke it once you have other ways in.\n", *shares, *threshold, *threshold)
		return nil
	})
}

func operatorUnseal(args []string) int {
	cf := newClientFlags("operator unseal")
	reset := cf.fs.Bool("reset", false, "discard the unseal progress")
	return runCommand(func() error {
		c, err := cf.setup(args)
		if err != nil {
			return err
		}
		key := cf.fs.Arg(0)
		if key == "" && !*reset {
			fmt.Fprint(stderr, "Unseal Key (will be hidden): ")
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && line == "" {
				return usageError("no unseal key given")
			}
			key = strings.TrimSpace(line)
		}
		st, err := c.Unseal(background(), key, *reset)
		if err != nil {
			return fmt.Errorf("Error unsealing: %w", err)
		}
		return printSealStatus(cf, st)
	})
}
