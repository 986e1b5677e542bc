package cli

import "fmt"

// runUnwrap prints the response a wrapping token holds, using the token up.
// Without an argument the command's token is the wrapping token, as with
// `VAULT_TOKEN=<wrapping token> vault unwrap`.
func runUnwrap(args []string) int {
	cf := newClientFlags("unwrap")
	return runCommand(func() error {
		c, err := cf.setup(args)
		if err != nil {
			return err
		}
		if cf.fs.NArg() > 1 {
			return usageError("usage: arca unwrap [flags] [TOKEN]")
		}
		s, err := c.Unwrap(background(), cf.fs.Arg(0))
		if err != nil {
			return fmt.Errorf("Error unwrapping: %w", err)
		}
		return cf.output(s)
	})
}
