package pos_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/pos"
)

// TestParseMoneyOddForms: every odd form a till (or a config file, or a
// terminal) might send. The canonical form — ASCII digits, an optional
// '.' with 1 to 3 decimals, an optional '-' on a non-zero amount — is
// accepted, leading zeros included (the till API's documented pattern
// ^[0-9]+(\.[0-9]{1,3})?$ allows them); everything else is refused with
// an error that names what is wrong and says what is accepted. "+1.000"
// and "-0" were accepted, and every refusal said only "must be digits
// with an optional '.'".
func TestParseMoneyOddForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		fils int64
	}{
		{"1", 1000}, {"1.5", 1500}, {"1.25", 1250}, {"1.250", 1250}, {"0.001", 1},
		{"01.500", 1500}, {"000", 0}, {"0.000", 0}, {"-1.250", -1250},
		{"1000000000000", 1_000_000_000_000_000}, {"1000000000000.000", 1_000_000_000_000_000},
		{"-1000000000000.000", -1_000_000_000_000_000},
	} {
		m, err := pos.ParseMoney(tc.in)
		if err != nil || m.Fils() != tc.fils {
			t.Errorf("ParseMoney(%q) = %d, %v; want %d fils", tc.in, m.Fils(), err, tc.fils)
		}
	}
	for _, tc := range []struct {
		in, problem string
		err         error
	}{
		{"", "empty", pos.ErrMoneyEmpty},
		{"+1.000", "'+' sign", pos.ErrMoneySyntax},
		{"+0", "'+' sign", pos.ErrMoneySyntax},
		{"-0", "negative zero", pos.ErrMoneySyntax},
		{"-0.000", "negative zero", pos.ErrMoneySyntax},
		{"-", "no digits", pos.ErrMoneySyntax},
		{"--1", "'-'", pos.ErrMoneySyntax},
		{"1-", "'-'", pos.ErrMoneySyntax},
		{" 1.000", "white space", pos.ErrMoneySyntax},
		{"1.000 ", "white space", pos.ErrMoneySyntax},
		{"1 000", "white space", pos.ErrMoneySyntax},
		{"\t1", "white space", pos.ErrMoneySyntax},
		{"1\u00a0000", "white space", pos.ErrMoneySyntax},
		{"1e3", "exponent", pos.ErrMoneySyntax},
		{"1E3", "exponent", pos.ErrMoneySyntax},
		{"1.5e-1", "exponent", pos.ErrMoneySyntax},
		{"0x10", "hexadecimal", pos.ErrMoneySyntax},
		{"0X1F", "hexadecimal", pos.ErrMoneySyntax},
		{"0b101", "'b'", pos.ErrMoneySyntax},
		{"1_000", "separator", pos.ErrMoneySyntax},
		{"1,000", "','", pos.ErrMoneySyntax},
		{"1,5", "','", pos.ErrMoneySyntax},
		{"1'000", "separator", pos.ErrMoneySyntax},
		{"١٢٣", "non-ASCII digit", pos.ErrMoneySyntax},
		{"1٫500", "Arabic decimal separator", pos.ErrMoneySyntax},
		{"۱۲", "non-ASCII digit", pos.ErrMoneySyntax},
		{"１２", "non-ASCII digit", pos.ErrMoneySyntax},
		{"1.", "no digit after '.'", pos.ErrMoneySyntax},
		{".5", "no digit before '.'", pos.ErrMoneySyntax},
		{".", "no digit before '.'", pos.ErrMoneySyntax},
		{"1.2.3", "more than one '.'", pos.ErrMoneySyntax},
		{"NaN", "not a number", pos.ErrMoneySyntax},
		{"Inf", "not a number", pos.ErrMoneySyntax},
		{"-Infinity", "not a number", pos.ErrMoneySyntax},
		{"KWD 1", "'K'", pos.ErrMoneySyntax},
		{"1KD", "'K'", pos.ErrMoneySyntax},
		{"\xff", "byte 0xff", pos.ErrMoneySyntax},
		{"1.2345", "more than 3 decimals", pos.ErrMoneyPrecision},
		{"0.1000", "more than 3 decimals", pos.ErrMoneyPrecision},
		{"1000000000000.001", "too large", pos.ErrMoneyRange},
		{"1000000000001", "too large", pos.ErrMoneyRange},
		{"99999999999999999999", "too large", pos.ErrMoneyRange},
		{"-99999999999999999999", "too large", pos.ErrMoneyRange},
		{"0000000000000000000000000001000000000000.5", "too large", pos.ErrMoneyRange},
	} {
		_, err := pos.ParseMoney(tc.in)
		if !errors.Is(err, tc.err) {
			t.Errorf("ParseMoney(%q) error = %v, want %v", tc.in, err, tc.err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.problem) {
			t.Errorf("ParseMoney(%q) error %q does not say %q", tc.in, msg, tc.problem)
		}
		if tc.err == pos.ErrMoneySyntax && !strings.Contains(err.Error(), `e.g. "1.250"`) {
			t.Errorf("ParseMoney(%q) error %q does not say what is accepted", tc.in, err)
		}
	}
}

// TestDecodeMoneyOddForms: the till's amount fields (checkouts,
// installment invoices and their items) get a field error that names
// the problem and the accepted form; "-0.000" passed as zero where zero
// is allowed (an item's rate or amount), and a JSON number is refused.
func TestDecodeMoneyOddForms(t *testing.T) {
	for _, tc := range []struct {
		raw    string
		zeroOK bool
		msg    string
	}{
		{`"+1.000"`, false, "'+' sign"},
		{`"-0.000"`, true, "must not be negative"},
		{`"-0"`, false, "must be positive"},
		{`"-1.000"`, true, "must not be negative"},
		{`"0.000"`, false, "must be positive"},
		{`""`, false, "is empty"},
		{`" 1.000"`, false, "white space"},
		{`"1e3"`, false, "exponent"},
		{`"0x10"`, false, "hexadecimal"},
		{`"1_000"`, false, "separator"},
		{`"١٢٣"`, false, "non-ASCII digit"},
		{`"1."`, false, "no digit after '.'"},
		{`".5"`, false, "no digit before '.'"},
		{`"1.2345"`, false, "more than 3 decimals"},
		{`"99999999999999"`, false, "too large"},
		{`1.250`, false, "must be a string"},
		{`1e3`, false, "must be a string"},
		{`-0`, true, "must be a string"},
		{`true`, false, "must be a string"},
		{`null`, false, "is required"},
	} {
		_, err := pos.DecodeMoney("amount", json.RawMessage(tc.raw), tc.zeroOK)
		var e *pos.Error
		if !errors.As(err, &e) || e.Code != pos.EInvalid || e.Field != "amount" || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("DecodeMoney(%s) = %v; want an invalid amount saying %q", tc.raw, err, tc.msg)
			continue
		}
		if !strings.Contains(e.Message, `"1.250"`) && !strings.Contains(e.Message, "too large") {
			t.Errorf("DecodeMoney(%s) = %q does not say what is accepted", tc.raw, e.Message)
		}
	}
	for _, raw := range []string{`"1.250"`, `"01.25"`, `"\u0031.250"`} {
		if m, err := pos.DecodeMoney("amount", json.RawMessage(raw), false); err != nil || m != 1250 {
			t.Errorf("DecodeMoney(%s) = %v, %v; want 1.250", raw, m, err)
		}
	}
}

// TestMoneyUnmarshalOddForms: a terminal's or a gateway's amount (a
// string or a bare JSON number) is held to the same rules; a JSON string
// is unescaped as JSON, not taken between its quotes.
func TestMoneyUnmarshalOddForms(t *testing.T) {
	for _, in := range []string{`"+1.000"`, `"-0"`, `-0`, `-0.000`, `"1e3"`, `1E3`, `"0x10"`, `"١٢٣"`, `" 1"`, `"1."`, `"1.2345"`, `""`} {
		var m pos.Money
		if err := json.Unmarshal([]byte(in), &m); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want an error", in, m)
		}
	}
	for in, want := range map[string]pos.Money{`"1.250"`: 1250, `1.25`: 1250, `"\u0031.250"`: 1250, `0`: 0, `-1.5`: -1500} {
		var m pos.Money
		if err := json.Unmarshal([]byte(in), &m); err != nil || m != want {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", in, m, err, want)
		}
	}
}
