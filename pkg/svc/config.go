// Package svc is the service runtime every depthcap binary shares:
// configuration from the environment, logging, the metrics and health
// server, and ordered graceful shutdown.
package svc

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// ErrConfig marks every configuration error; test with errors.Is.
var ErrConfig = errors.New("invalid configuration")

// ConfigError names the variable, the value and what is allowed.
type ConfigError struct {
	Var     string // environment variable, e.g. "NATS_DUPLICATES_WINDOW"
	Value   string // the value given (secrets are never put here)
	Allowed string // what is allowed, e.g. "a duration >= 0"
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("invalid %s=%q: allowed: %s", e.Var, e.Value, e.Allowed)
}

// Unwrap makes errors.Is(err, ErrConfig) true.
func (e *ConfigError) Unwrap() error { return ErrConfig }

// Invalid builds a *ConfigError.
func Invalid(variable string, value any, allowed string, args ...any) error {
	return &ConfigError{Var: variable, Value: fmt.Sprint(value), Allowed: fmt.Sprintf(allowed, args...)}
}

// Validator is implemented by every config struct.
type Validator interface {
	Validate() error
}

// Owner is implemented by config structs that own variable prefixes: any
// environment variable with an owned prefix that is not a field of the
// struct is reported as a probable typo (envconfig's CheckDisallowed needs a
// common prefix, which depthcap's documented names do not have).
type Owner interface {
	OwnedPrefixes() []string
}

// Load fills cfg (a pointer to a struct) from the environment with
// envconfig, rejects unknown variables under the prefixes cfg owns, and
// validates it. Every error names the variable.
func Load(cfg Validator) error {
	if err := envconfig.Process("", cfg); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return &ConfigError{Var: pe.KeyName, Value: pe.Value, Allowed: "a value of type " + pe.TypeName}
		}
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if o, ok := cfg.(Owner); ok {
		if err := checkUnknown(o.OwnedPrefixes(), VarNames(cfg)); err != nil {
			return err
		}
	}
	return cfg.Validate()
}

func checkUnknown(prefixes, known []string) error {
	set := make(map[string]bool, len(known))
	for _, k := range known {
		set[k] = true
	}
	var unknown []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if set[name] {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				unknown = append(unknown, name)
				break
			}
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return fmt.Errorf("%w: unknown environment variable %s (prefixes %s are reserved for known settings: check the spelling against the README's configuration table)",
		ErrConfig, strings.Join(unknown, ", "), strings.Join(prefixes, " "))
}

// Var describes one configuration variable, for documentation and checks.
type Var struct {
	Name     string
	Type     string
	Default  string
	Required bool
	Desc     string
}

// Vars lists the environment variables a config struct reads, in field
// order, following envconfig's rules for nested structs and tags.
func Vars(cfg any) []Var {
	var out []Var
	collect(reflect.Indirect(reflect.ValueOf(cfg)).Type(), &out)
	return out
}

// VarNames lists just the names of Vars(cfg).
func VarNames(cfg any) []string {
	vs := Vars(cfg)
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.Name
	}
	return names
}

func collect(t reflect.Type, out *[]Var) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("ignored") == "true" {
			continue
		}
		name := f.Tag.Get("envconfig")
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			collect(f.Type, out) // embedded config: envconfig adds no prefix
			continue
		}
		if name == "" {
			name = strings.ToUpper(f.Name)
		}
		*out = append(*out, Var{
			Name:     name,
			Type:     typeName(f.Type),
			Default:  f.Tag.Get("default"),
			Required: f.Tag.Get("required") == "true",
			Desc:     f.Tag.Get("desc"),
		})
	}
}

func typeName(t reflect.Type) string {
	switch {
	case t.PkgPath() == "time" && t.Name() == "Duration":
		return "duration"
	case t.Kind() == reflect.Slice:
		return "list of " + typeName(t.Elem())
	case t.Kind() == reflect.Bool:
		return "bool"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "number"
	default:
		return "string"
	}
}

// Defaults sets every field of the struct cfg points to from its
// `default` tag, as Load would from an empty environment, without reading
// the environment: in-process users (tests, the all-in-one binary) start
// from it. Embedded structs are walked; fields without a tag are left.
func Defaults(cfg any) error {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("svc.Defaults: want a pointer to a struct, got %T", cfg)
	}
	return setDefaults(v.Elem())
}

// MustDefaults returns a T set by Defaults. A default tag that does not
// parse is a programming error (each service's DefaultConfig test catches
// it): it panics, naming T.
func MustDefaults[T any]() T {
	var c T
	if err := Defaults(&c); err != nil {
		panic(fmt.Sprintf("%T default tags: %v", c, err))
	}
	return c
}

func setDefaults(v reflect.Value) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), v.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			if err := setDefaults(fv); err != nil {
				return err
			}
			continue
		}
		def, ok := f.Tag.Lookup("default")
		if !ok || !fv.CanSet() {
			continue
		}
		var err error
		switch {
		case f.Type == reflect.TypeFor[time.Duration]():
			var d time.Duration
			d, err = time.ParseDuration(def)
			fv.SetInt(int64(d))
		case f.Type.Kind() == reflect.String:
			fv.SetString(def)
		case f.Type.Kind() == reflect.Bool:
			var b bool
			b, err = strconv.ParseBool(def)
			fv.SetBool(b)
		case f.Type.Kind() >= reflect.Int && f.Type.Kind() <= reflect.Int64:
			var n int64
			n, err = strconv.ParseInt(def, 10, 64)
			fv.SetInt(n)
		case f.Type.Kind() >= reflect.Uint && f.Type.Kind() <= reflect.Uint64:
			var n uint64
			n, err = strconv.ParseUint(def, 10, 64)
			fv.SetUint(n)
		case f.Type.Kind() == reflect.Float64 || f.Type.Kind() == reflect.Float32:
			var x float64
			x, err = strconv.ParseFloat(def, 64)
			fv.SetFloat(x)
		default:
			return fmt.Errorf("%s: no default for type %s", f.Name, f.Type)
		}
		if err != nil {
			return fmt.Errorf("%s: default %q: %w", f.Name, def, err)
		}
	}
	return nil
}
