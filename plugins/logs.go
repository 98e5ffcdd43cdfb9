package plugins

import "github.com/hashicorp/go-hclog"

// forwardedLogger re-emits a plugin's log lines in the host's log. go-plugin
// adds the plugin's own "timestamp" to every line it forwards; the host's
// logger stamps the line already (to the millisecond), so the copy is
// dropped: one time per line, as in the host's own lines.
type forwardedLogger struct{ hclog.Logger }

func forwarded(l hclog.Logger) hclog.Logger { return forwardedLogger{l} }

func dropTimestamp(args []interface{}) []interface{} {
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == "timestamp" {
			out := append(append([]interface{}{}, args[:i]...), args[i+2:]...)
			return dropTimestamp(out)
		}
	}
	return args
}

func (f forwardedLogger) Log(level hclog.Level, msg string, args ...interface{}) {
	f.Logger.Log(level, msg, dropTimestamp(args)...)
}
func (f forwardedLogger) Trace(msg string, args ...interface{}) {
	f.Logger.Trace(msg, dropTimestamp(args)...)
}
func (f forwardedLogger) Debug(msg string, args ...interface{}) {
	f.Logger.Debug(msg, dropTimestamp(args)...)
}
func (f forwardedLogger) Info(msg string, args ...interface{}) {
	f.Logger.Info(msg, dropTimestamp(args)...)
}
func (f forwardedLogger) Warn(msg string, args ...interface{}) {
	f.Logger.Warn(msg, dropTimestamp(args)...)
}
func (f forwardedLogger) Error(msg string, args ...interface{}) {
	f.Logger.Error(msg, dropTimestamp(args)...)
}
func (f forwardedLogger) With(args ...interface{}) hclog.Logger {
	return forwardedLogger{f.Logger.With(args...)}
}
func (f forwardedLogger) Named(name string) hclog.Logger {
	return forwardedLogger{f.Logger.Named(name)}
}
func (f forwardedLogger) ResetNamed(name string) hclog.Logger {
	return forwardedLogger{f.Logger.ResetNamed(name)}
}
