package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/crypto"
	"github.com/posbridge/posbridge/internal/hesabe"
)

// keyFlags are the key sources shared by encrypt and decrypt: flags, then
// environment, then the config file.
type keyFlags struct {
	key, iv, config *string
}

func addKeyFlags(fs interface {
	String(name, value, usage string) *string
}) keyFlags {
	return keyFlags{
		key:    fs.String("key", "", "merchant secret key (32 characters); or $"+config.EnvSecretKey+", or --config"),
		iv:     fs.String("iv", "", "merchant IV key (16 characters); or $"+config.EnvIVKey+", or --config"),
		config: fs.String("config", "", "read hesabe.secret_key and hesabe.iv_key from this config file"),
	}
}

func (k keyFlags) codec() (*crypto.Codec, error) {
	key, iv := *k.key, *k.iv
	if *k.config != "" && (key == "" || iv == "") {
		cfg, err := config.Load(*k.config)
		if err != nil {
			return nil, err
		}
		if key == "" {
			key = cfg.Hesabe.SecretKey.Value()
		}
		if iv == "" {
			iv = cfg.Hesabe.IVKey.Value()
		}
	}
	if key == "" {
		key = os.Getenv(config.EnvSecretKey)
	}
	if iv == "" {
		iv = os.Getenv(config.EnvIVKey)
	}
	if key == "" || iv == "" {
		return nil, fmt.Errorf("no keys: give --key and --iv, set $%s and $%s, or --config", config.EnvSecretKey, config.EnvIVKey)
	}
	return crypto.NewCodec([]byte(key), []byte(iv))
}

const maxStdin = 16 << 20

func runHesabeEncrypt(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "hesabe encrypt", "hesabe encrypt [--key K --iv I | --config FILE] [--pad 16|32] [--raw] < plaintext")
	keys := addKeyFlags(fs)
	pad := fs.Int("pad", 16, "pad block size: 16 (what clients send) or 32 (what Hesabe's server sends)")
	raw := fs.Bool("raw", false, "encrypt stdin exactly; by default one trailing newline is dropped")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *pad != 16 && *pad != 32 {
		return fail(e, "hesabe encrypt: --pad must be 16 or 32")
	}
	codec, err := keys.codec()
	if err != nil {
		return fail(e, "hesabe encrypt: %v", err)
	}
	in, err := io.ReadAll(io.LimitReader(e.stdin, maxStdin))
	if err != nil {
		return fail(e, "hesabe encrypt: read stdin: %v", err)
	}
	if !*raw {
		in = bytes.TrimSuffix(in, []byte("\n"))
		in = bytes.TrimSuffix(in, []byte("\r"))
	}
	writeResult(e, []byte(codec.EncryptPad(in, *pad)))
	return exitOK
}

func runHesabeDecrypt(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "hesabe decrypt", "hesabe decrypt [--key K --iv I | --config FILE] < hex")
	keys := addKeyFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	codec, err := keys.codec()
	if err != nil {
		return fail(e, "hesabe decrypt: %v", err)
	}
	in, err := io.ReadAll(io.LimitReader(e.stdin, maxStdin))
	if err != nil {
		return fail(e, "hesabe decrypt: read stdin: %v", err)
	}
	in = bytes.TrimSpace(in)
	// Accept a whole answer body too: {"response":"<hex>"} or {"data":"<hex>"}.
	if len(in) > 0 && in[0] == '{' {
		var env map[string]any
		if json.Unmarshal(in, &env) == nil {
			for _, k := range []string{"response", "data"} {
				if s, ok := env[k].(string); ok {
					in = []byte(s)
				}
			}
		}
	}
	plain, err := codec.Decrypt(string(in))
	if err != nil {
		return fail(e, "hesabe decrypt: %v", err)
	}
	writeResult(e, plain)
	return exitOK
}

// writeResult prints b exactly, adding a newline only for a terminal.
func writeResult(e env, b []byte) {
	_, _ = e.stdout.Write(b)
	if e.stdoutTTY {
		_, _ = io.WriteString(e.stdout, "\n")
	}
}

func runHesabeTerminals(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "hesabe terminals", "hesabe terminals --config FILE [--json]")
	cfgPath := fs.String("config", defaultConfigPath(), "config file with the hesabe account")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return fail(e, "%v", err)
	}
	if err := cfg.RequireGateway(); err != nil {
		return fail(e, "%s: %v", *cfgPath, err)
	}
	client, err := hesabe.New(cfg.Hesabe.Client())
	if err != nil {
		return fail(e, "%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	terms, err := client.Terminals(ctx)
	if err != nil {
		return fail(e, "%v", err)
	}
	if *asJSON {
		printJSON(e, terms)
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TERMINAL ID\tNAME\tPOS TYPE\tHESABE ID")
	for _, t := range terms {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", t.TerminalID, t.TerminalName, t.PosType, t.ID)
	}
	_ = tw.Flush()
	return exitOK
}
