package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/posbridge/posbridge/internal/pos"
)

// This file decodes YAML strictly and says what is wrong in the file's own
// terms: every error names the key by its YAML path (hesabe.timeout,
// terminals[1].serial.port) and its line, shows the value unless it is a
// secret, and says what is accepted. yaml.v3's own messages name Go types
// ("cannot unmarshal !!str `ten` into int", "field x not found in type
// config.Hesabe"), truncate a float into an int without a word, and quote
// the text of an unquoted value that starts with '*' (a secret, when the
// value is a password).

var (
	typeSecret   = reflect.TypeFor[Secret]()
	typeDuration = reflect.TypeFor[Duration]()
	typeAmount   = reflect.TypeFor[Amount]()
)

// decodeOptions says how one YAML file is read.
type decodeOptions struct {
	// expandEnv replaces ${VAR} in values with the variable's value.
	expandEnv bool
	// lookup reads the environment (os.LookupEnv).
	lookup func(string) (string, bool)
	// hideValues keeps every value out of errors (the secrets file).
	hideValues bool
}

// maxFileSize bounds a configuration or secrets file.
const maxFileSize = 4 << 20

// decodeYAML reads one YAML document from r over out (a pointer to a
// struct holding the defaults), checking every key and value first. The
// errors are *ValidationError with Line set.
func decodeYAML(r io.Reader, out any, o decodeOptions) error {
	raw, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if len(raw) > maxFileSize {
		return fmt.Errorf("the file is larger than %d MiB", maxFileSize>>20)
	}
	doc, aliases, err := parseDocument(raw)
	if err != nil {
		return err
	}
	if doc == nil {
		return nil // empty: the defaults
	}
	w := &walker{opts: o, unquotedAliases: aliases}
	w.check(doc, reflect.TypeOf(out).Elem(), "")
	if len(w.errs) > 0 {
		return errors.Join(w.errs...)
	}
	if err := doc.Decode(out); err != nil {
		// The walk above refuses everything the decoder does; should
		// one still get through, its message loses any quoted value.
		return errors.New(hideQuoted(cleanYAMLError(err)))
	}
	return nil
}

// aliasPlaceholder stands in for an unquoted value that starts with '*'
// and names no anchor, so the file parses and the walk can name its key.
const aliasPlaceholder = "posbridge-unquoted-alias-5c1e0f7a"

var unknownAnchor = regexp.MustCompile(`unknown anchor '(.*)' referenced`)

// parseDocument parses raw into its one document's root node (nil when
// the file holds no document). An unquoted value such as "*Pa55word" is a
// YAML alias, and yaml.v3's error for it quotes the text: each such value
// is replaced by a placeholder the walk reports with its key and line,
// never with its text.
func parseDocument(raw []byte) (*yaml.Node, int, error) {
	aliases := 0
	for {
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil, aliases, nil
		}
		if err != nil {
			m := unknownAnchor.FindStringSubmatch(err.Error())
			if m == nil {
				return nil, aliases, errors.New(syntaxError(err))
			}
			fixed, ok := replaceAlias(raw, m[1])
			if !ok || aliases >= 100 {
				return nil, aliases, errors.New("an unquoted value starts with '*', which YAML reads as a reference to an anchor (&name); quote the value")
			}
			raw, aliases = fixed, aliases+1
			continue
		}
		var more yaml.Node
		if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
			return nil, aliases, errors.New("the file holds more than one YAML document (a line '---' starts another); posbridge reads one document")
		}
		if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].ShortTag() == "!!null") {
			return nil, aliases, nil
		}
		return doc.Content[0], aliases, nil
	}
}

// replaceAlias replaces the first "*name" that stands where a value starts
// (after ": ", "- ", "[", "," or "{") with the placeholder.
func replaceAlias(raw []byte, name string) ([]byte, bool) {
	re := regexp.MustCompile(`(^|[:\-\[,{]\s*|\n\s*)\*` + regexp.QuoteMeta(name) + `(\s|$|[,\]}])`)
	loc := re.FindSubmatchIndex(raw)
	if loc == nil {
		return nil, false
	}
	var b bytes.Buffer
	b.Write(raw[:loc[3]])
	b.WriteString(aliasPlaceholder)
	b.Write(raw[loc[4]:])
	return b.Bytes(), true
}

// syntaxError is yaml.v3's message for a file that is not YAML, with a hint
// for the common causes. None of these messages quotes the file's text.
func syntaxError(err error) string {
	msg := cleanYAMLError(err)
	switch {
	case strings.Contains(msg, "mapping values are not allowed"):
		msg += " (a value that contains ': ' must be quoted)"
	case strings.Contains(msg, "cannot start any token"):
		msg += " (indent with spaces, not tabs; quote a value that starts with '@', '`' or '%')"
	case strings.Contains(msg, "did not find expected key"):
		msg += " (check the indentation: keys of one section line up)"
	case strings.Contains(msg, "value contains itself"):
		msg = "an anchor (&name) holds a reference to itself (*name)"
	}
	return hideQuoted(msg)
}

var quoted = regexp.MustCompile("`[^`]*`|'[^']*'")

// hideQuoted drops text yaml.v3 quotes from the file.
func hideQuoted(s string) string { return quoted.ReplaceAllString(s, "…") }

func cleanYAMLError(err error) string {
	return strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\n  ", "; "), "yaml: ")
}

// walker checks a node tree against the Go type it decodes into.
type walker struct {
	opts            decodeOptions
	unquotedAliases int
	errs            []error
}

func (w *walker) fail(n *yaml.Node, path, value string, err error) {
	if w.opts.hideValues {
		value = ""
	}
	if path == "" {
		path = "the file"
	}
	w.errs = append(w.errs, &ValidationError{Field: path, Value: clip(value), Line: n.Line, Err: err})
}

// clip shortens a value for a message.
func clip(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// check walks n, which decodes into a value of type t at path.
func (w *walker) check(n *yaml.Node, t reflect.Type, path string) {
	secret := t == typeSecret
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode {
		if n.Value == aliasPlaceholder && n.Style == 0 {
			w.fail(n, path, "", errors.New("starts with '*', which YAML reads as a reference to an anchor; quote the value (\"*...\")"))
			return
		}
		if n.Anchor != "" {
			w.fail(n, path, "", errors.New("starts with '&', which YAML reads as an anchor name; quote the value (\"&...\")"))
			return
		}
		if n.Style&yaml.TaggedStyle != 0 && n.Tag != "!!str" {
			w.fail(n, path, "", errors.New("starts with a YAML tag ('!'); write the plain value, quoted if it starts with '!'"))
			return
		}
		if w.opts.expandEnv && !w.expand(n, t, path) {
			return
		}
		if n.ShortTag() == "!!null" {
			return // key: (nothing) keeps the default
		}
	}
	value := n.Value
	if secret {
		value = ""
	}
	switch {
	case t == typeDuration:
		if w.scalar(n, t, path) {
			if _, err := parseDuration(n.Value); err != nil {
				w.fail(n, path, value, err)
			}
		}
	case t == typeAmount:
		if w.scalar(n, t, path) {
			if _, err := parseAmount(n.Value); err != nil {
				w.fail(n, path, value, err)
			}
		}
	case t.Kind() == reflect.String:
		w.scalar(n, t, path)
	case t.Kind() == reflect.Bool:
		var b bool
		if w.scalar(n, t, path) && n.Decode(&b) != nil {
			w.fail(n, path, value, errors.New("must be true or false"))
		}
	case t.Kind() == reflect.Int:
		var i int
		if w.scalar(n, t, path) && (n.ShortTag() != "!!int" || n.Decode(&i) != nil) {
			w.fail(n, path, value, errors.New("must be a whole number, e.g. 20"))
		}
	case t.Kind() == reflect.Float64:
		var f float64
		if w.scalar(n, t, path) && ((n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || n.Decode(&f) != nil) {
			w.fail(n, path, value, errors.New("must be a number, e.g. 5 or 2.5"))
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.fail(n, path, "", errors.New("must be a list: one item per line, each starting with '- '"))
			return
		}
		for i, item := range n.Content {
			w.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case t.Kind() == reflect.Struct:
		w.mapping(n, t, path)
	default:
		// Every type of the configuration is handled above.
		w.fail(n, path, "", fmt.Errorf("cannot be read (internal: no check for %s)", t))
	}
}

// scalar reports whether n is a single value; if not, it says so.
func (w *walker) scalar(n *yaml.Node, t reflect.Type, path string) bool {
	if n.Kind == yaml.ScalarNode {
		return true
	}
	what := "a list"
	if n.Kind == yaml.MappingNode {
		what = "a section of keys"
	}
	accept := "a single value"
	switch t {
	case typeDuration:
		accept += " such as 30s or 5m"
	case typeAmount:
		accept += ` such as "100.000"`
	}
	w.fail(n, path, "", fmt.Errorf("must be %s, not %s", accept, what))
	return false
}

// mapping checks a section against struct type t.
func (w *walker) mapping(n *yaml.Node, t reflect.Type, path string) {
	keys, fields := yamlFields(t)
	if n.Kind != yaml.MappingNode {
		w.fail(n, path, "", fmt.Errorf("must be a section of keys (%s)", strings.Join(keys, ", ")))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.fail(k, path, "", errors.New("has a key that is not a name"))
			continue
		}
		at := join(path, k.Value)
		if k.Value == "<<" {
			w.fail(k, at, "", errors.New("YAML merge keys (<<) are not supported; write the keys out"))
			continue
		}
		if line, ok := seen[k.Value]; ok {
			w.fail(k, at, "", fmt.Errorf("is set twice: already on line %d", line))
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			w.fail(k, at, "", unknownKey(k.Value, path, keys))
			continue
		}
		w.check(v, f.Type, at)
	}
}

// unknownKey says a key is not one of keys, suggesting the closest.
func unknownKey(key, section string, keys []string) error {
	best, bestD := "", 3
	for _, k := range keys {
		d := editDistance(strings.ToLower(key), k)
		if d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" {
		return fmt.Errorf("unknown key (did you mean %s?)", best)
	}
	if section == "" {
		section = "the file"
	}
	return fmt.Errorf("unknown key; %s has: %s", section, strings.Join(keys, ", "))
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// yamlFields lists a struct's YAML keys in order and maps them to fields.
func yamlFields(t reflect.Type) ([]string, map[string]reflect.StructField) {
	var keys []string
	fields := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		keys = append(keys, name)
		fields[name] = f
	}
	return keys, fields
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${VAR} in a value with the variable's value, as it is:
// the value is never parsed as YAML, so no character in it changes the
// file. It reports false (and an error) when a variable is unset: an
// empty secret would otherwise pass silently.
func (w *walker) expand(n *yaml.Node, t reflect.Type, path string) bool {
	if !strings.Contains(n.Value, "${") {
		return true
	}
	var missing []string
	v := envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
		name := envRef.FindStringSubmatch(m)[1]
		v, ok := w.opts.lookup(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		w.fail(n, path, "", fmt.Errorf("environment variable %s is not set", strings.Join(slices.Compact(missing), ", ")))
		return false
	}
	n.Value = v
	switch {
	case t.Kind() == reflect.String:
		n.Tag = "!!str" // a string is the value itself, even "null" or ""
	case n.Style == 0 || n.Style == yaml.TaggedStyle:
		n.Tag = "" // a number, boolean or duration reads the value's text
	}
	return true
}

// parseDuration reads a Go duration ("30s", "5m", "1h30m").
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("not a duration; write a number and a unit: 900ms, 30s, 5m, 1h (720h is 30 days)")
	}
	return d, nil
}

// parseAmount reads a KWD amount, saying what is wrong in one phrase.
func parseAmount(s string) (pos.Money, error) {
	m, err := pos.ParseMoney(s)
	if err == nil {
		return m, nil
	}
	var se *pos.MoneySyntaxError
	problem := err.Error()
	switch {
	case errors.As(err, &se):
		problem = se.Problem
	case errors.Is(err, pos.ErrMoneyEmpty):
		problem = "is empty"
	case errors.Is(err, pos.ErrMoneyPrecision):
		problem = "has more than 3 decimals (KWD has 3)"
	case errors.Is(err, pos.ErrMoneyRange):
		problem = "is too large (at most " + pos.MaxMoney.String() + ")"
	}
	return 0, fmt.Errorf("%s; write an amount in KWD with up to 3 decimals, e.g. %s", problem, strconv.Quote("100.000"))
}
