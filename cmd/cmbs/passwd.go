package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/crypto/bcrypt"

	"github.com/houssem/cmbs/occi/auth"
)

// passwd prints the users-file line for one user. The password comes from
// --password or the first line of standard input, so scripts can pipe it in
// without it showing in the process list.
func (a *app) passwd(args []string) error {
	fs := pflag.NewFlagSet("passwd", pflag.ContinueOnError)
	fs.SetOutput(a.stderr)
	password := fs.String("password", "", "the password (default: read the first line of standard input)")
	cost := fs.Int("cost", bcrypt.DefaultCost, fmt.Sprintf("bcrypt cost, %d to %d: each step doubles the time a password check takes", bcrypt.MinCost, bcrypt.MaxCost))
	fs.Usage = func() {
		fmt.Fprint(a.stderr, "Usage: cmbs passwd [--password PW] [--cost N] USER\n\n"+
			"Prints USER:BCRYPT-HASH, a line for the users file (cmbs serve --users FILE).\n\n"+fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: passwd: %w", errUsage, err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: passwd takes exactly one user name", errUsage)
	}
	user := fs.Arg(0)
	pw := *password
	if !fs.Changed("password") {
		if a.isTerminal(a.stdin) {
			fmt.Fprintf(a.stderr, "Password for %s (shown as typed): ", user)
		}
		var err error
		if pw, err = readLine(a.stdin); err != nil {
			return fmt.Errorf("passwd: read password: %w", err)
		}
	}
	line, err := auth.Entry(user, pw, *cost)
	if err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	_, err = fmt.Fprintln(a.stdout, line)
	return err
}

// readLine returns the first line of r without its line ending; input that
// ends without a newline counts as a line.
func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// isTerminal reports whether the stream (standard input or error) is a
// terminal.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
