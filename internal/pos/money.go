// Package pos holds posbridge's domain types: money, checkouts and their
// states, gateway error classes and the application error the till sees.
// It imports nothing else of posbridge, so every adapter (the Hesabe client,
// the bbolt queue, the terminal links) can depend on it.
package pos

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Money is an amount in fils, the thousandth part of a Kuwaiti dinar.
// It is fixed-point: arithmetic on it is integer arithmetic, never float.
type Money int64

// FilsPerDinar is the number of fils in one KWD (three decimals).
const FilsPerDinar = 1000

// MoneyFormat says what ParseMoney accepts, for error messages.
const MoneyFormat = `digits 0-9 with an optional '.' and 1 to 3 decimals, e.g. "1.250"`

// Errors returned by ParseMoney. They are wrapped with the offending text;
// a syntax error is a *MoneySyntaxError that says what is wrong.
var (
	ErrMoneyEmpty     = errors.New("amount is empty")
	ErrMoneySyntax    = errors.New("amount must be " + MoneyFormat)
	ErrMoneyPrecision = errors.New("amount has more than 3 decimals")
	ErrMoneyRange     = errors.New("amount is too large")
)

// MaxMoney is the largest amount ParseMoney accepts (and the most
// negative, negated): 10^12 KWD keeps every Money far from int64
// overflow, even summed.
const MaxMoney Money = 1_000_000_000_000 * FilsPerDinar

// MoneySyntaxError is an amount that is not written as ParseMoney accepts
// it. errors.Is(err, ErrMoneySyntax) holds.
type MoneySyntaxError struct {
	// Text is the amount as given.
	Text string
	// Problem says what is wrong, e.g. "has a '+' sign".
	Problem string
}

func (e *MoneySyntaxError) Error() string {
	return fmt.Sprintf("amount %s %s; write %s", quoteClipped(e.Text), e.Problem, MoneyFormat)
}

// Is makes a MoneySyntaxError an ErrMoneySyntax.
func (e *MoneySyntaxError) Is(target error) bool { return target == ErrMoneySyntax }

// quoteClipped quotes an amount for a message, clipped to 40 runes (a
// till's field may be kilobytes long).
func quoteClipped(s string) string {
	if utf8.RuneCountInString(s) > 40 {
		return strconv.Quote(string([]rune(s)[:40])) + "…"
	}
	return strconv.Quote(s)
}

// ParseMoney parses a decimal amount such as "0.100", "12", "12.5" or
// "-3.250" into fils. The one form it accepts is ASCII digits, an optional
// '.' followed by 1 to 3 decimals, and an optional leading '-' on a
// non-zero amount; leading zeros are allowed ("01.5" is 1.500). It refuses,
// each with a *MoneySyntaxError naming the problem: a '+' sign, "-0",
// white space, an exponent ("1e3"), hexadecimal ("0x10"), digit
// separators ("1_000", "1,000"), digits other than 0-9 (Arabic-Indic
// "١٢٣", full-width), "1." and ".5", NaN and infinities. Trailing zeros
// past the third decimal are refused too (ErrMoneyPrecision): "0.1000" is
// over-precise input, not a rounding question. Amounts beyond ±MaxMoney
// are ErrMoneyRange.
func ParseMoney(s string) (Money, error) {
	if s == "" {
		return 0, ErrMoneyEmpty
	}
	if problem := moneySyntax(s); problem != "" {
		return 0, &MoneySyntaxError{Text: s, Problem: problem}
	}
	neg := s[0] == '-'
	intPart, frac, _ := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	if len(frac) > 3 {
		return 0, fmt.Errorf("%w (KWD has 3): %s", ErrMoneyPrecision, quoteClipped(s))
	}
	tooLarge := fmt.Errorf("%w: %s (at most %s)", ErrMoneyRange, quoteClipped(s), MaxMoney)
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) > 13 {
		return 0, tooLarge
	}
	var dinars int64
	if intPart != "" {
		d, err := strconv.ParseInt(intPart, 10, 64)
		if err != nil {
			return 0, tooLarge // only digits, at most 13 of them: cannot happen
		}
		dinars = d
	}
	frac += strings.Repeat("0", 3-len(frac))
	fils, _ := strconv.ParseInt(frac, 10, 64)
	v := Money(dinars*FilsPerDinar + fils)
	if v > MaxMoney {
		return 0, tooLarge
	}
	if neg {
		if v == 0 {
			return 0, &MoneySyntaxError{Text: s, Problem: "is a negative zero"}
		}
		v = -v
	}
	return v, nil
}

// moneySyntax says what keeps s from being an amount ParseMoney accepts
// ("" when nothing does), naming the first problem a till developer would
// recognize.
func moneySyntax(s string) string {
	body := s
	switch s[0] {
	case '+':
		return "has a '+' sign"
	case '-':
		body = s[1:]
	}
	if body == "" {
		return "has no digits"
	}
	if len(body) > 1 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X') {
		return "is hexadecimal (0x)"
	}
	switch strings.ToLower(body) {
	case "nan", "inf", "infinity":
		return "is not a number"
	}
	dots := 0
	for i := 0; i < len(body); {
		r, size := utf8.DecodeRuneInString(body[i:])
		switch {
		case r >= '0' && r <= '9':
		case r == '.':
			dots++
		case r == utf8.RuneError && size == 1:
			return fmt.Sprintf("has the byte 0x%02x, which is not UTF-8 text", body[i])
		case unicode.IsSpace(r):
			return "has white space"
		case r == 'e' || r == 'E':
			return "has an exponent ('e')"
		case r == ',':
			return "has ',' ('.' marks the decimals; no thousands separator)"
		case r == '_' || r == '\'' || r == '\u066c' || r == '\u2019':
			return fmt.Sprintf("has the digit separator %q", r)
		case r == '\u066b':
			return "has the Arabic decimal separator '٫' ('.' marks the decimals)"
		case unicode.IsDigit(r):
			return fmt.Sprintf("has the non-ASCII digit %q (%U)", r, r)
		default:
			return fmt.Sprintf("has %q, which is not a digit or '.'", r)
		}
		i += size
	}
	intPart, frac, hasDot := strings.Cut(body, ".")
	switch {
	case dots > 1:
		return "has more than one '.'"
	case intPart == "":
		return "has no digit before '.'"
	case hasDot && frac == "":
		return "has no digit after '.'"
	}
	return ""
}

// Fils returns the amount in fils.
func (m Money) Fils() int64 { return int64(m) }

// String formats the amount with exactly 3 decimals: "0.100", "-12.345".
// This is the till API's format and Hesabe's string format.
func (m Money) String() string {
	v := int64(m)
	sign := ""
	var u uint64
	if v < 0 {
		sign = "-"
		u = uint64(-(v + 1)) + 1 // safe for math.MinInt64
	} else {
		u = uint64(v)
	}
	return fmt.Sprintf("%s%d.%03d", sign, u/FilsPerDinar, u%FilsPerDinar)
}

// NumberString formats the amount as the shortest decimal number that is
// exact: 100 fils is "0.1", 1500 is "1.5", 2000 is "2". Hesabe's POS invoice
// takes the amount as a JSON number in this form.
func (m Money) NumberString() string {
	s := m.String()
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// MarshalJSON writes the amount as a 3-decimal string, "0.100".
func (m Money) MarshalJSON() ([]byte, error) {
	return []byte(`"` + m.String() + `"`), nil
}

// UnmarshalJSON accepts a string ("0.100") or a bare JSON number (0.1),
// each as ParseMoney does (so not 1e2 nor -0). A number is read by its
// decimal text, never through float64; a string is unescaped as JSON.
func (m *Money) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return errors.New("amount is null")
	}
	if len(s) > 0 && s[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("amount: %w", err)
		}
	}
	v, err := ParseMoney(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Add returns m+o, or an error when the sum would overflow.
func (m Money) Add(o Money) (Money, error) {
	if (o > 0 && m > math.MaxInt64-o) || (o < 0 && m < math.MinInt64-o) {
		return 0, ErrMoneyRange
	}
	return m + o, nil
}
