package config

import (
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// EvalContext is the evaluation context of pipeline files: the functions
// available in every expression.
func EvalContext() *hcl.EvalContext {
	return &hcl.EvalContext{Functions: map[string]function.Function{"env": envFunc}}
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
