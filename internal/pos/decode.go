package pos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// DecodeJSON decodes one JSON object from a till into v strictly: unknown
// fields, keys in another case ("AMOUNT") or given twice in one object,
// trailing data, invalid UTF-8 and wrong types are errors, each a
// *Error with code EInvalid naming the field ("body" for the whole).
func DecodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return FieldErrorf(EInvalid, "body", "is empty; send a JSON object")
	}
	if !utf8.Valid(body) {
		return FieldErrorf(EInvalid, "body", "is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonFieldError(body, v, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return FieldErrorf(EInvalid, "body", "has data after the JSON object")
	}
	if path, problem := keyProblem(body, v); problem != "" {
		return FieldErrorf(EInvalid, path, "%s", problem)
	}
	return nil
}

// jsonFieldError turns a decoding error of body into v into a *Error
// naming the field by its full path, array indexes included.
func jsonFieldError(body []byte, v any, err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return FieldErrorf(EInvalid, "body", "must be a JSON object")
		}
		if p := jsonPathAt(body, te.Offset); p != "" {
			field = p
		}
		return FieldErrorf(EInvalid, field, "must be %s, not %s", jsonTypeName(te.Type), te.Value)
	case errors.As(err, &se):
		return FieldErrorf(EInvalid, "body", "is not valid JSON (at byte %d)", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return FieldErrorf(EInvalid, "body", "is truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if p := unknownFieldPath(body, v, name); p != "" {
			return FieldErrorf(EInvalid, p, "is not a known field")
		}
		return FieldErrorf(EInvalid, quoteEmpty(name), "is not a known field")
	}
	var e *Error
	if errors.As(err, &e) {
		return e // a field type's own UnmarshalJSON said what is wrong
	}
	return FieldErrorf(EInvalid, "body", "could not be decoded: %v", err)
}

func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return fmt.Sprintf("of type %s", t)
}

// DecodeMoney reads a till's amount field: a JSON string of ASCII digits
// with an optional '.' and 1 to 3 decimals ("1.250"), as ParseMoney
// accepts it, without a sign. zeroOK allows "0.000"; negative amounts are
// refused. A JSON number is refused: the till API's amounts are strings.
// Errors are *Error naming field and saying what is accepted.
func DecodeMoney(field string, raw json.RawMessage, zeroOK bool) (Money, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, FieldErrorf(EInvalid, field, `is required, as a string with up to 3 decimals, e.g. "1.250"`)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, FieldErrorf(EInvalid, field, `must be a string, e.g. "1.250", not %s`, jsonKind(raw))
	}
	accepted := `send a string of ` + MoneyFormat
	if s == "" {
		return 0, FieldErrorf(EInvalid, field, "is empty; %s", accepted)
	}
	sign := "must be positive"
	if zeroOK {
		sign = "must not be negative"
	}
	// A '-' on what is otherwise an amount is a sign problem, "-0.000"
	// included (which ParseMoney calls a negative zero).
	if len(s) > 1 && s[0] == '-' && s[1] != '-' {
		if _, err := ParseMoney(s[1:]); err == nil {
			return 0, FieldErrorf(EInvalid, field, "%s: %s; %s", sign, quoteClipped(s), accepted)
		}
	}
	m, err := ParseMoney(s)
	var se *MoneySyntaxError
	switch {
	case errors.As(err, &se):
		return 0, FieldErrorf(EInvalid, field, "%s: %s; %s", se.Problem, quoteClipped(s), accepted)
	case errors.Is(err, ErrMoneyPrecision):
		return 0, FieldErrorf(EInvalid, field, "has more than 3 decimals (KWD has 3): %s; %s", quoteClipped(s), accepted)
	case errors.Is(err, ErrMoneyRange):
		return 0, FieldErrorf(EInvalid, field, "is too large: %s (at most %s)", quoteClipped(s), MaxMoney)
	case err != nil:
		return 0, FieldErrorf(EInvalid, field, "%s: %s", accepted, quoteClipped(s))
	case m < 0 || m == 0 && !zeroOK:
		return 0, FieldErrorf(EInvalid, field, "%s: %s; %s", sign, quoteClipped(s), accepted)
	}
	return m, nil
}

func jsonKind(raw json.RawMessage) string {
	switch bytes.TrimSpace(raw)[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}
