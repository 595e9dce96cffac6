package pos

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// encoding/json names a field in error by its keys alone ("invoices.items.
// quantity", or for an unknown field only "tip"): in a batch of a hundred
// invoices the till cannot tell which one is wrong. These helpers find
// the full path, indexes included ("invoices[37].items[0].quantity"), by
// reading the body's tokens again.

// jsonFrame is one open object or array while walking a body's tokens.
type jsonFrame struct {
	array   bool
	index   int    // array: the current element
	key     string // object: the current key
	wantKey bool   // object: the next token is a key (or its end)
	typ     reflect.Type
	seen    map[string]bool // object: the keys met so far (keyProblem)
}

// jsonWalk calls visit for every value of body, in document order, with
// its path (frames), the Go type it decodes into (nil when unknown), and
// the input offset just after its first token (after a scalar, after
// the opening '{' or '['). For an object key it calls key instead. A
// callback returning true stops the walk.
func jsonWalk(body []byte, typ reflect.Type, visit func(frames []jsonFrame, typ reflect.Type, end int64) bool,
	key func(frames []jsonFrame, typ reflect.Type, name string) bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var frames []jsonFrame
	// valueType is the type of the value about to be read.
	valueType := func() reflect.Type {
		if len(frames) == 0 {
			return typ
		}
		f := frames[len(frames)-1]
		if f.array {
			return elemType(f.typ)
		}
		return fieldType(f.typ, f.key)
	}
	// done moves the parent on after a complete value.
	done := func() {
		if len(frames) == 0 {
			return
		}
		f := &frames[len(frames)-1]
		if f.array {
			f.index++
		} else {
			f.key, f.wantKey = "", true
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		if len(frames) > 0 && frames[len(frames)-1].wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				frames = frames[:len(frames)-1]
				done()
				continue
			}
			name, _ := tok.(string)
			if key != nil && key(frames, frames[len(frames)-1].typ, name) {
				return
			}
			frames[len(frames)-1].key, frames[len(frames)-1].wantKey = name, false
			continue
		}
		switch d, _ := tok.(json.Delim); d {
		case ']', '}':
			frames = frames[:len(frames)-1]
			done()
		case '[', '{':
			t := valueType()
			if visit != nil && visit(frames, t, dec.InputOffset()) {
				return
			}
			frames = append(frames, jsonFrame{array: d == '[', wantKey: d == '{', typ: t})
		default:
			if visit != nil && visit(frames, valueType(), dec.InputOffset()) {
				return
			}
			done()
		}
	}
}

// jsonPath formats frames as invoices[2].items[0].amount.
func jsonPath(frames []jsonFrame, last string) string {
	var b strings.Builder
	for _, f := range frames {
		if f.array {
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
			continue
		}
		if f.wantKey {
			continue // at a key of this object, not in a value
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(f.key)
	}
	if last != "" {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(last)
	}
	return b.String()
}

// jsonPathAt is the path of the value whose first token ends at offset
// (json.UnmarshalTypeError.Offset), or "".
func jsonPathAt(body []byte, offset int64) string {
	var path string
	jsonWalk(body, nil, func(frames []jsonFrame, _ reflect.Type, end int64) bool {
		if end == offset {
			path = jsonPath(frames, "")
			return true
		}
		return end > offset
	}, nil)
	return path
}

// unknownFieldPath is the path of the first key named name in body that
// v's type does not have, or "".
func unknownFieldPath(body []byte, v any, name string) string {
	var path string
	jsonWalk(body, reflect.TypeOf(v), nil, func(frames []jsonFrame, typ reflect.Type, key string) bool {
		if key == name && structType(typ) != nil && !hasField(structType(typ), key) {
			path = jsonPath(frames, quoteEmpty(key))
			return true
		}
		return false
	})
	return path
}

// keyProblem is the first key of body that encoding/json would take
// without complaint but that a till must not send: one given twice in
// the same object (the decoder keeps the last; another reader of the
// body, a proxy or a log, may keep the first), or one that names a field
// of v's type only without regard to case ("AMOUNT" for amount). It
// returns the key's path and what is wrong, or "" when nothing is.
func keyProblem(body []byte, v any) (path, problem string) {
	jsonWalk(body, reflect.TypeOf(v), nil, func(frames []jsonFrame, typ reflect.Type, key string) bool {
		f := &frames[len(frames)-1]
		if f.seen == nil {
			f.seen = make(map[string]bool)
		}
		if f.seen[key] {
			path, problem = jsonPath(frames, quoteEmpty(key)), "is given more than once in the same object"
			return true
		}
		f.seen[key] = true
		if st := structType(typ); st != nil {
			if sf, ok := lookupField(st, key); ok {
				if name := jsonName(sf); name != key {
					path, problem = jsonPath(frames, quoteEmpty(key)), fmt.Sprintf("is not a known field; field names are case-sensitive: %q", name)
					return true
				}
			}
		}
		return false
	})
	return path, problem
}

// jsonName is the name a struct field has in JSON.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		name = f.Name
	}
	return name
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// opaque: a type that decodes itself (or anything): nothing to look into.
func opaque(t reflect.Type) bool {
	return t == nil || t.Kind() == reflect.Interface ||
		t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) ||
		t.Implements(textUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType)
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func elemType(t reflect.Type) reflect.Type {
	t = deref(t)
	if opaque(t) || (t.Kind() != reflect.Slice && t.Kind() != reflect.Array) {
		return nil
	}
	return t.Elem()
}

func structType(t reflect.Type) reflect.Type {
	t = deref(t)
	if opaque(t) || t.Kind() != reflect.Struct {
		return nil
	}
	return t
}

// fieldType is the type a key of an object of type t decodes into.
func fieldType(t reflect.Type, key string) reflect.Type {
	t = deref(t)
	if opaque(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Map:
		return t.Elem()
	case reflect.Struct:
		if f, ok := lookupField(t, key); ok {
			return f.Type
		}
	}
	return nil
}

func hasField(t reflect.Type, key string) bool {
	_, ok := lookupField(t, key)
	return ok
}

// lookupField finds the field key decodes into as encoding/json does: by
// JSON name, exact or else without regard to case, embedded structs
// included.
func lookupField(t reflect.Type, key string) (reflect.StructField, bool) {
	var fold reflect.StructField
	found := false
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			if et := deref(f.Type); et.Kind() == reflect.Struct {
				if ef, ok := lookupField(et, key); ok {
					return ef, true
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name == key {
			return f, true
		}
		if !found && strings.EqualFold(name, key) {
			fold, found = f, true
		}
	}
	return fold, found
}

// quoteEmpty shows an empty key as "" so that an error about it still
// names something.
func quoteEmpty(key string) string {
	if key == "" {
		return `""`
	}
	return key
}
