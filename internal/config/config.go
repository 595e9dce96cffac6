// Package config reads posbridge's YAML configuration: defaults first, then
// the file, then ${VAR} expansion, then secrets from the environment or a
// separate secrets file, then validation that names the key and says what
// is wrong. Unknown keys are errors, never silently ignored.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/posbridge/posbridge/internal/pos"
)

// Config is the whole configuration.
type Config struct {
	// DataDir holds the bbolt database.
	DataDir string `yaml:"data_dir"`
	// SecretsFile, if set, is a YAML file with the secrets (same keys as
	// the hesabe section's secrets and api.token); on Linux it must not be
	// readable by group or others.
	SecretsFile string `yaml:"secrets_file"`

	Hesabe      Hesabe     `yaml:"hesabe"`
	API         Listener   `yaml:"api"`
	Diagnostics Listener   `yaml:"diagnostics"`
	Checkout    Checkout   `yaml:"checkout"`
	Offline     Offline    `yaml:"offline"`
	MQTT        MQTT       `yaml:"mqtt"`
	Terminals   []Terminal `yaml:"terminals"`
	Log         Log        `yaml:"log"`

	// Requests chooses which other request kinds the till API serves and
	// where they go; HitPay and Payout are those gateways' accounts.
	Requests Requests `yaml:"requests"`
	HitPay   HitPay   `yaml:"hitpay"`
	Payout   Payout   `yaml:"payout"`
}

// Requests configures customers, installment batches and payees.
type Requests struct {
	// Customers: the customer gateway, hesabe or hitpay ("off": refused).
	Customers string `yaml:"customers"`
	// Installments: HeStallMent batches through Hesabe.
	Installments bool `yaml:"installments"`
	// Payees: payout payees through the payout provider.
	Payees bool `yaml:"payees"`
	// MaxPending bounds how many such requests wait at once.
	MaxPending int `yaml:"max_pending"`
	// MaxBatch bounds the invoices in one installment batch.
	MaxBatch int `yaml:"max_batch"`
}

// HitPay is the HitPay account (customers).
type HitPay struct {
	URL     string   `yaml:"url"`
	APIKey  Secret   `yaml:"api_key"`
	Timeout Duration `yaml:"timeout"`
}

// Payout is the payout provider account (payees).
type Payout struct {
	URL        string `yaml:"url"`
	MerchantID string `yaml:"merchant_id"`
	APIKey     Secret `yaml:"api_key"`
	// ProviderPublicKeyFile: the provider's RSA public key (PEM) that seals
	// identity, card and STC numbers before they are stored or sent.
	ProviderPublicKeyFile string `yaml:"provider_public_key_file"`
	// MerchantPrivateKeyFile: the merchant's RSA private key (PEM) that
	// opens the answer's sealed fields. Keep it 0600.
	MerchantPrivateKeyFile string `yaml:"merchant_private_key_file"`
	// Padding: pkcs1v15 (default) or oaep-sha256.
	Padding string   `yaml:"padding"`
	Timeout Duration `yaml:"timeout"`
}

// Listener is a local HTTP endpoint: loopback by default, token required.
type Listener struct {
	Listen string `yaml:"listen"`
	Token  Secret `yaml:"token"`
	// AllowRemote must be true for Listen to be other than a loopback
	// address (other computers could then reach the endpoint).
	AllowRemote bool `yaml:"allow_remote"`
}

// Checkout holds the engine's settings.
type Checkout struct {
	// DefaultDeadline: how long a checkout may take when the till does not
	// say (Square's default is 5 minutes).
	DefaultDeadline Duration `yaml:"default_deadline"`
	// MaxDeadline: the longest a till may ask for.
	MaxDeadline Duration `yaml:"max_deadline"`
	// MaxAmount: the largest single checkout, online or not.
	MaxAmount Amount `yaml:"max_amount"`
	// PollInterval: how often a sent invoice's status is asked of Hesabe.
	PollInterval Duration `yaml:"poll_interval"`
	// DrainRate: submissions per second when a backlog drains (0: no limit).
	DrainRate float64 `yaml:"drain_rate"`
	// Retention: finished checkouts are kept this long, then pruned.
	Retention Duration `yaml:"retention"`
}

// Offline holds the store-and-forward limits that apply while the gateway
// is unreachable.
type Offline struct {
	MaxCount  int    `yaml:"max_count"`
	MaxAmount Amount `yaml:"max_amount"`
	MaxSingle Amount `yaml:"max_single"`
}

// MQTT configures the terminal broker: the embedded one by default, or an
// external one when broker is set.
type MQTT struct {
	Embedded struct {
		Enabled bool   `yaml:"enabled"`
		Listen  string `yaml:"listen"`
	} `yaml:"embedded"`
	// Broker is an external broker URL (tcp://host:1883, ssl://host:8883);
	// setting it turns the embedded broker off.
	Broker      string `yaml:"broker"`
	Username    string `yaml:"username"`
	Password    Secret `yaml:"password"`
	CAFile      string `yaml:"ca_file"`
	CertFile    string `yaml:"cert_file"`
	KeyFile     string `yaml:"key_file"`
	ClientID    string `yaml:"client_id"`
	TopicPrefix string `yaml:"topic_prefix"`
}

// Terminal is one Smart POS terminal and its link.
type Terminal struct {
	// ID is the Hesabe terminal_id.
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Link is "mqtt" or "serial".
	Link   string     `yaml:"link"`
	Serial SerialLink `yaml:"serial"`
}

// SerialLink names a serial port by path or by USB identity.
type SerialLink struct {
	// Port is a path (/dev/ttyACM0, COM3).
	Port string `yaml:"port"`
	// USB selects the port by USB vendor/product id and serial number,
	// which survives COM renumbering and ttyACM0→ttyACM1.
	USB struct {
		VID    string `yaml:"vid"`
		PID    string `yaml:"pid"`
		Serial string `yaml:"serial"`
	} `yaml:"usb"`
	Baud int `yaml:"baud"`
}

// Amount is a KWD amount written as a string with up to 3 decimals.
type Amount struct{ pos.Money }

// UnmarshalYAML reads "100.000".
func (a *Amount) UnmarshalYAML(n *yaml.Node) error {
	m, err := parseAmount(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q: %v", n.Line, n.Value, err)
	}
	a.Money = m
	return nil
}

// MarshalYAML writes "100.000".
func (a Amount) MarshalYAML() (any, error) { return a.Money.String(), nil }

// Hesabe is the gateway account.
type Hesabe struct {
	MerchantURL  string   `yaml:"merchant_url"`
	PaymentURL   string   `yaml:"payment_url"`
	MerchantCode string   `yaml:"merchant_code"`
	AccessCode   Secret   `yaml:"access_code"`
	SecretKey    Secret   `yaml:"secret_key"`
	IVKey        Secret   `yaml:"iv_key"`
	Username     string   `yaml:"username"`
	Password     Secret   `yaml:"password"`
	Timeout      Duration `yaml:"timeout"`
}

// Log configures logging.
type Log struct {
	// Level: debug, info, warn or error.
	Level string `yaml:"level"`
	// Format: text or json ("" picks text on a console, json otherwise).
	Format string `yaml:"format"`
}

// Secret is a string that never prints: fmt, logs and YAML output show
// "[redacted]". Use Value() where the secret is really needed.
type Secret string

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

// SecretValues returns the value of every Secret set in c (found by
// reflection, so a secret added to the configuration later is covered
// too): what loggers and reports must scrub.
func (c Config) SecretValues() []string {
	var out []string
	for _, s := range c.secrets() {
		if s.value != "" {
			out = append(out, s.value)
		}
	}
	return out
}

// secretField is one Secret of the configuration and its YAML path.
type secretField struct{ path, value string }

// secrets lists every Secret in c with its YAML path.
func (c Config) secrets() []secretField {
	var out []secretField
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			keys, _ := yamlFields(v.Type())
			k := 0
			for i := range v.NumField() {
				f := v.Type().Field(i)
				if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); !f.IsExported() || name == "-" {
					continue
				}
				walk(v.Field(i), join(path, keys[k]))
				k++
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		case reflect.Map:
			for it := v.MapRange(); it.Next(); {
				walk(it.Value(), join(path, fmt.Sprint(it.Key())))
			}
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case reflect.String:
			if v.Type() == typeSecret {
				out = append(out, secretField{path, v.String()})
			}
		}
	}
	walk(reflect.ValueOf(c), "")
	return out
}

// String redacts.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts under %#v too.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// MarshalYAML redacts.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON redacts.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// Duration is a time.Duration written as "5m", "900ms".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q: %v", n.Line, n.Value, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Default returns the configuration used for every key the file leaves out.
func Default() Config {
	return Config{
		DataDir: defaultDataDir(),
		Hesabe: Hesabe{
			MerchantURL: "https://merchantapisandbox.hesabe.com/api",
			PaymentURL:  "https://sandbox.hesabe.com/api",
			Timeout:     Duration(20 * time.Second),
		},
		API:         Listener{Listen: "127.0.0.1:8470"},
		Diagnostics: Listener{Listen: "127.0.0.1:8471"},
		Checkout: Checkout{
			DefaultDeadline: Duration(5 * time.Minute), MaxDeadline: Duration(30 * time.Minute),
			MaxAmount: Amount{10_000_000}, PollInterval: Duration(3 * time.Second),
			DrainRate: 5, Retention: Duration(30 * 24 * time.Hour),
		},
		Offline: Offline{MaxCount: 50, MaxAmount: Amount{500_000}, MaxSingle: Amount{50_000}},
		MQTT: func() MQTT {
			var m MQTT
			m.Embedded.Enabled = true
			m.Embedded.Listen = "127.0.0.1:1883"
			m.TopicPrefix = "posbridge"
			return m
		}(),
		Log:      Log{Level: "info"},
		Requests: Requests{Customers: "hesabe", Installments: true, MaxPending: 10000, MaxBatch: 100},
		HitPay:   HitPay{URL: "https://api.sandbox.hit-pay.com", Timeout: Duration(20 * time.Second)},
		Payout:   Payout{Padding: "pkcs1v15", Timeout: Duration(20 * time.Second)},
	}
}

// ValidationError says which key is wrong and why.
type ValidationError struct {
	Field string // the YAML path: hesabe.timeout, terminals[1].serial.port
	Value string // "" for secrets
	Err   error
	Line  int // the line in the file, when known (0: not known)
}

func (e *ValidationError) Error() string {
	at := ""
	if e.Line > 0 {
		at = fmt.Sprintf("line %d: ", e.Line)
	}
	if e.Value != "" {
		return fmt.Sprintf("config: %s%s = %q: %v", at, e.Field, e.Value, e.Err)
	}
	return fmt.Sprintf("config: %s%s: %v", at, e.Field, e.Err)
}

func (e *ValidationError) Unwrap() error { return e.Err }

// Load reads the file at path over the defaults (path "" gives the
// defaults), applies secrets and validates.
func Load(path string) (Config, error) {
	cfg := Default()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		defer f.Close()
		if cfg, err = Parse(f); err != nil {
			return cfg, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := cfg.applySecrets(os.LookupEnv); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, inFile(path, err)
	}
	return cfg, nil
}

// inFile gives each of err's refused values with the file's path (a
// joined error is one per line), so a technician knows which file to
// open.
func inFile(path string, err error) error {
	if path == "" {
		return err
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return fmt.Errorf("%s: %w", path, err)
	}
	var errs []error
	for _, e := range j.Unwrap() {
		errs = append(errs, fmt.Errorf("%s: %w", path, e))
	}
	return errors.Join(errs...)
}

// Parse decodes YAML over Default(), expanding ${VAR} in values from the
// environment. Every key and value is checked as it is read: an unknown
// key, a list where a value belongs, a word where a number belongs are
// errors that name the key's YAML path and line.
func Parse(r io.Reader) (Config, error) {
	cfg := Default()
	if err := decodeYAML(r, &cfg, decodeOptions{expandEnv: true, lookup: os.LookupEnv}); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return cfg, err
		}
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// Environment variables that override secrets in the file.
const (
	EnvAccessCode = "POSBRIDGE_HESABE_ACCESS_CODE"
	EnvSecretKey  = "POSBRIDGE_HESABE_SECRET_KEY"
	EnvIVKey      = "POSBRIDGE_HESABE_IV_KEY"
	EnvPassword   = "POSBRIDGE_HESABE_PASSWORD"
	EnvAPIToken   = "POSBRIDGE_API_TOKEN"
	EnvDiagToken  = "POSBRIDGE_DIAG_TOKEN"
	EnvMQTTPass   = "POSBRIDGE_MQTT_PASSWORD"
	EnvHitPayKey  = "POSBRIDGE_HITPAY_API_KEY"
	EnvPayoutKey  = "POSBRIDGE_PAYOUT_API_KEY"
)

// secretsFile is the shape of the secrets file.
type secretsFile struct {
	Hesabe struct {
		AccessCode Secret `yaml:"access_code"`
		SecretKey  Secret `yaml:"secret_key"`
		IVKey      Secret `yaml:"iv_key"`
		Password   Secret `yaml:"password"`
	} `yaml:"hesabe"`
	API struct {
		Token Secret `yaml:"token"`
	} `yaml:"api"`
	Diagnostics struct {
		Token Secret `yaml:"token"`
	} `yaml:"diagnostics"`
	MQTT struct {
		Password Secret `yaml:"password"`
	} `yaml:"mqtt"`
	HitPay struct {
		APIKey Secret `yaml:"api_key"`
	} `yaml:"hitpay"`
	Payout struct {
		APIKey Secret `yaml:"api_key"`
	} `yaml:"payout"`
}

// applySecrets reads the secrets file (if any), then the environment: a
// value set later wins.
func (c *Config) applySecrets(lookup func(string) (string, bool)) error {
	if c.SecretsFile != "" {
		if err := checkSecretsPerm(c.SecretsFile); err != nil {
			return &ValidationError{Field: "secrets_file", Value: c.SecretsFile, Err: withoutPath(err)}
		}
		b, err := os.ReadFile(c.SecretsFile)
		if err != nil {
			return &ValidationError{Field: "secrets_file", Value: c.SecretsFile, Err: withoutPath(err)}
		}
		var sf secretsFile
		if err := decodeYAML(bytes.NewReader(b), &sf, decodeOptions{hideValues: true}); err != nil {
			return &ValidationError{Field: "secrets_file", Value: c.SecretsFile, Err: secretsFileError(err)}
		}
		setIf(&c.Hesabe.AccessCode, sf.Hesabe.AccessCode)
		setIf(&c.Hesabe.SecretKey, sf.Hesabe.SecretKey)
		setIf(&c.Hesabe.IVKey, sf.Hesabe.IVKey)
		setIf(&c.Hesabe.Password, sf.Hesabe.Password)
		setIf(&c.API.Token, sf.API.Token)
		setIf(&c.Diagnostics.Token, sf.Diagnostics.Token)
		setIf(&c.MQTT.Password, sf.MQTT.Password)
		setIf(&c.HitPay.APIKey, sf.HitPay.APIKey)
		setIf(&c.Payout.APIKey, sf.Payout.APIKey)
	}
	for env, dst := range map[string]*Secret{EnvAccessCode: &c.Hesabe.AccessCode, EnvSecretKey: &c.Hesabe.SecretKey,
		EnvIVKey: &c.Hesabe.IVKey, EnvPassword: &c.Hesabe.Password, EnvAPIToken: &c.API.Token,
		EnvDiagToken: &c.Diagnostics.Token, EnvMQTTPass: &c.MQTT.Password,
		EnvHitPayKey: &c.HitPay.APIKey, EnvPayoutKey: &c.Payout.APIKey} {
		if v, ok := lookup(env); ok && v != "" {
			*dst = Secret(v)
		}
	}
	return nil
}

// withoutPath drops a *fs.PathError's repetition of the path the message
// already names.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// secretsFileError rewrites the secrets file's errors without their
// "config: " prefix: they follow "config: secrets_file = PATH: ".
func secretsFileError(err error) error {
	var msgs []string
	for _, e := range unjoin(err) {
		msgs = append(msgs, strings.TrimPrefix(e.Error(), "config: "))
	}
	return errors.New(strings.Join(msgs, "; "))
}

// unjoin returns the errors errors.Join put together (or err alone).
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func setIf(dst *Secret, v Secret) {
	if v != "" {
		*dst = v
	}
}

// Validate checks every key it can without touching the network.
func (c Config) Validate() error {
	var errs []error
	add := func(field, value string, err error) {
		errs = append(errs, &ValidationError{Field: field, Value: value, Err: err})
	}
	if c.DataDir == "" {
		add("data_dir", "", errors.New("must not be empty"))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", c.Log.Level, errors.New("must be debug, info, warn or error"))
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		add("log.format", c.Log.Format, errors.New("must be text or json"))
	}
	h := c.Hesabe
	if k := len(h.SecretKey); k != 0 && k != 32 {
		add("hesabe.secret_key", "", fmt.Errorf("must be 32 characters (got %d)", k))
	}
	if k := len(h.IVKey); k != 0 && k != 16 {
		add("hesabe.iv_key", "", fmt.Errorf("must be 16 characters (got %d)", k))
	}
	if h.Timeout.D() <= 0 {
		add("hesabe.timeout", h.Timeout.D().String(), errors.New("must be positive"))
	}
	for _, u := range []struct{ k, v string }{{"hesabe.merchant_url", h.MerchantURL}, {"hesabe.payment_url", h.PaymentURL}} {
		if u.v == "" {
			continue // RequireGateway asks for merchant_url; payment_url defaults to it
		}
		if err := checkHTTPURL(u.v, "hesabe.username and hesabe.password"); err != nil {
			add(u.k, displayURL(u.v), err)
		}
	}
	errs = append(errs, c.validateRun()...)
	return errors.Join(errs...)
}

// RequireGateway checks that the gateway account is complete, for commands
// that call Hesabe.
func (c Config) RequireGateway() error {
	var errs []error
	h := c.Hesabe
	for _, f := range []struct {
		k string
		v string
	}{{"hesabe.merchant_url", h.MerchantURL}, {"hesabe.merchant_code", h.MerchantCode}, {"hesabe.access_code", h.AccessCode.Value()},
		{"hesabe.secret_key", h.SecretKey.Value()}, {"hesabe.iv_key", h.IVKey.Value()},
		{"hesabe.username", h.Username}, {"hesabe.password", h.Password.Value()}} {
		if f.v == "" {
			errs = append(errs, &ValidationError{Field: f.k, Err: errors.New("is required")})
		}
	}
	return errors.Join(errs...)
}
