// Package pos holds posbridge's domain types: money, checkouts and their
// states, gateway error classes and the application error the till sees.
// It imports nothing else of posbridge, so every adapter (the Hesabe client,
// the bbolt queue, the terminal links) can depend on it.
package pos

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Money is an amount in fils, the thousandth part of a Kuwaiti dinar.
// It is fixed-point: arithmetic on it is integer arithmetic, never float.
type Money int64

// FilsPerDinar is the number of fils in one KWD (three decimals).
const FilsPerDinar = 1000

// Errors returned by ParseMoney. They are wrapped with the offending text.
var (
	ErrMoneyEmpty     = errors.New("amount is empty")
	ErrMoneySyntax    = errors.New("amount must be digits with an optional '.' and at most 3 decimals")
	ErrMoneyPrecision = errors.New("amount has more than 3 decimals")
	ErrMoneyRange     = errors.New("amount is too large")
)

// maxMoneyDinars keeps every Money far from int64 overflow, even summed.
const maxMoneyDinars = 1_000_000_000_000 // 10^12 KWD

// ParseMoney parses a decimal amount such as "0.100", "12", "12.5" or "-3.250"
// into fils. It accepts at most 3 decimals, no exponent, no spaces, no
// thousands separators. Trailing zeros past the third decimal are refused:
// "0.1000" is over-precise input, not a rounding question.
func ParseMoney(s string) (Money, error) {
	if s == "" {
		return 0, ErrMoneyEmpty
	}
	neg := false
	body := s
	if body[0] == '-' || body[0] == '+' {
		neg = body[0] == '-'
		body = body[1:]
	}
	intPart, frac, hasDot := strings.Cut(body, ".")
	if intPart == "" || (hasDot && frac == "") {
		return 0, fmt.Errorf("%q: %w", s, ErrMoneySyntax)
	}
	if !allDigits(intPart) || !allDigits(frac) {
		return 0, fmt.Errorf("%q: %w", s, ErrMoneySyntax)
	}
	if len(frac) > 3 {
		return 0, fmt.Errorf("%q: %w", s, ErrMoneyPrecision)
	}
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) > 13 {
		return 0, fmt.Errorf("%q: %w", s, ErrMoneyRange)
	}
	var dinars int64
	if intPart != "" {
		d, err := strconv.ParseInt(intPart, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", s, ErrMoneySyntax)
		}
		dinars = d
	}
	if dinars > maxMoneyDinars {
		return 0, fmt.Errorf("%q: %w", s, ErrMoneyRange)
	}
	frac += strings.Repeat("0", 3-len(frac))
	fils, _ := strconv.ParseInt(frac, 10, 64)
	v := dinars*FilsPerDinar + fils
	if neg {
		v = -v
	}
	return Money(v), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
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

// UnmarshalJSON accepts a string ("0.100") or a bare JSON number (0.1). A
// number is read by its decimal text, never through float64.
func (m *Money) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return errors.New("amount is null")
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	} else if strings.ContainsAny(s, "eE") {
		return fmt.Errorf("%q: %w", s, ErrMoneySyntax)
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
