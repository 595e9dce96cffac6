package pos_test

import (
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/pos"
)

func TestParseMoney(t *testing.T) {
	ok := []struct {
		in   string
		fils int64
		str  string
		num  string
	}{
		{"0.100", 100, "0.100", "0.1"},
		{"0.1", 100, "0.100", "0.1"},
		{"12", 12000, "12.000", "12"},
		{"12.5", 12500, "12.500", "12.5"},
		{"12.345", 12345, "12.345", "12.345"},
		{"0", 0, "0.000", "0"},
		{"0.001", 1, "0.001", "0.001"},
		{"-3.250", -3250, "-3.250", "-3.25"},
		{"007.010", 7010, "7.010", "7.01"},
	}
	for _, tc := range ok {
		m, err := pos.ParseMoney(tc.in)
		if err != nil {
			t.Fatalf("ParseMoney(%q): %v", tc.in, err)
		}
		if got := m.Fils(); got != tc.fils {
			t.Errorf("ParseMoney(%q) = %d fils, want %d", tc.in, got, tc.fils)
		}
		if got := m.String(); got != tc.str {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.str)
		}
		if got := m.NumberString(); got != tc.num {
			t.Errorf("NumberString(%q) = %q, want %q", tc.in, got, tc.num)
		}
	}
	bad := []struct {
		in  string
		err error
	}{
		{"", pos.ErrMoneyEmpty},
		{"1.2345", pos.ErrMoneyPrecision},
		{"0.1000", pos.ErrMoneyPrecision},
		{"1e3", pos.ErrMoneySyntax},
		{"1,000", pos.ErrMoneySyntax},
		{" 1", pos.ErrMoneySyntax},
		{".5", pos.ErrMoneySyntax},
		{"5.", pos.ErrMoneySyntax},
		{"-", pos.ErrMoneySyntax},
		{"abc", pos.ErrMoneySyntax},
		{"NaN", pos.ErrMoneySyntax},
		{"99999999999999999999", pos.ErrMoneyRange},
	}
	for _, tc := range bad {
		if _, err := pos.ParseMoney(tc.in); !errors.Is(err, tc.err) {
			t.Errorf("ParseMoney(%q) error = %v, want %v", tc.in, err, tc.err)
		}
	}
}

func TestMoneyJSON(t *testing.T) {
	var v struct{ A, B pos.Money }
	if err := json.Unmarshal([]byte(`{"A":"0.100","B":0.1}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != 100 || v.B != 100 {
		t.Fatalf("got %d %d, want 100 100", v.A, v.B)
	}
	b, _ := json.Marshal(v)
	if got, want := string(b), `{"A":"0.100","B":"0.100"}`; got != want {
		t.Fatalf("Marshal = %s, want %s", got, want)
	}
	for _, in := range []string{`{"A":1e2}`, `{"A":null}`, `{"A":"1.0001"}`, `{"A":true}`} {
		if err := json.Unmarshal([]byte(in), &v); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", in)
		}
	}
}

func TestMoneyExtremes(t *testing.T) {
	if got := pos.Money(math.MinInt64).String(); got != "-9223372036854775.808" {
		t.Errorf("MinInt64 = %s", got)
	}
	if _, err := pos.Money(math.MaxInt64).Add(1); err == nil {
		t.Error("overflow not detected")
	}
}

// canonicalMoney is the one form ParseMoney accepts: the till API's
// documented pattern (^[0-9]+(\.[0-9]{1,3})?$) with an optional '-'.
var canonicalMoney = regexp.MustCompile(`^-?[0-9]+(\.[0-9]{1,3})?$`)

func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"0.100", "12", "-3.25", "1e3", "", ".", "0.0001",
		"+1.000", "-0", "-0.000", " 1", "1 ", "0x10", "1_000", "1,000", "١٢٣", "1٫5", "１２",
		"1.", ".5", "007.010", "1000000000000.000", "1000000000000.001", "99999999999999999999",
		"NaN", "-Inf", "\xff", "--1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := pos.ParseMoney(s)
		if err != nil {
			if errors.Is(err, pos.ErrMoneySyntax) && !strings.Contains(err.Error(), pos.MoneyFormat) {
				t.Fatalf("%q: syntax error %q does not say what is accepted", s, err)
			}
			return
		}
		if !canonicalMoney.MatchString(s) || s[0] == '-' && m == 0 {
			t.Fatalf("accepted %q, which is not digits with an optional '.' and 1-3 decimals", s)
		}
		if m > pos.MaxMoney || m < -pos.MaxMoney {
			t.Fatalf("accepted %q beyond the range: %v", s, m)
		}
		again, err := pos.ParseMoney(m.String())
		if err != nil || again != m {
			t.Fatalf("%q -> %s -> %v, %v", s, m, again, err)
		}
		again, err = pos.ParseMoney(m.NumberString())
		if err != nil || again != m {
			t.Fatalf("%q -> %s -> %v, %v", s, m.NumberString(), again, err)
		}
	})
}
