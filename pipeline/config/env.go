package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// EvalContext is the evaluation context of pipeline files: the functions
// available in every expression. Relative paths given to file() are read
// from the process's working folder; EvalContextIn reads them from a
// pipeline file's folder.
func EvalContext() *hcl.EvalContext { return EvalContextIn("") }

// EvalContextIn is EvalContext for a pipeline file in dir: file("x")
// reads dir/x.
func EvalContextIn(dir string) *hcl.EvalContext {
	return &hcl.EvalContext{Functions: map[string]function.Function{"env": envFunc, "file": fileFunc(dir)}}
}

// MaxSecretFile bounds what file() reads: a secret, a DSN, a token.
const MaxSecretFile = 64 << 10

// fileFunc is file(PATH): the content of a file (Kubernetes and Docker
// mount secrets as files), without one trailing newline, relative paths
// from dir. A missing, unreadable or larger than MaxSecretFile file is an
// error naming the path, never the content. Values read by file() are
// treated as env() values are: a diagnostic about an attribute whose name
// says it holds a secret, or that a connector or sink marks sensitive,
// shows no source line.
func fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Description: "Reads a file, such as a mounted secret.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path := args[0].AsString()
			if !filepath.IsAbs(path) && dir != "" {
				path = filepath.Join(dir, path)
			}
			f, err := os.Open(path)
			if err != nil {
				return cty.NilVal, fmt.Errorf("file(%q): %w", args[0].AsString(), errors.Unwrap(err))
			}
			defer f.Close()
			b, err := io.ReadAll(io.LimitReader(f, MaxSecretFile+1))
			if err != nil {
				return cty.NilVal, fmt.Errorf("file(%q): %w", args[0].AsString(), err)
			}
			if len(b) > MaxSecretFile {
				return cty.NilVal, fmt.Errorf("file(%q) is larger than %d KiB: it is for secrets and short values", args[0].AsString(), MaxSecretFile>>10)
			}
			s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
			return cty.StringVal(s), nil
		},
	})
}

// envFunc is env(NAME) or env(NAME, DEFAULT): the value of an environment
// variable, DEFAULT when it is unset, or null when it is unset and no default
// is given. A required attribute that ends up null is reported where it is set.
var envFunc = function.New(&function.Spec{
	Description: "Reads an environment variable.",
	Params:      []function.Parameter{{Name: "name", Type: cty.String}},
	VarParam:    &function.Parameter{Name: "default", Type: cty.String, AllowNull: true},
	Type: func(args []cty.Value) (cty.Type, error) {
		if len(args) > 2 {
			return cty.NilType, fmt.Errorf("env takes a name and at most one default, got %d arguments", len(args))
		}
		return cty.String, nil
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if v, ok := os.LookupEnv(args[0].AsString()); ok {
			return cty.StringVal(v), nil
		}
		if len(args) == 2 {
			return args[1], nil
		}
		return cty.NullVal(cty.String), nil
	},
})
