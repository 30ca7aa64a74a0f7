package main

import (
	"reflect"
	"sort"
	"strings"
)

// recordingCommands names the commands whose runs the registry records:
// those embedding trackFlags, the flags startTracking needs. Read from the
// command structs, the dashboard's hint and the docs test cannot name a
// command that records nothing, or miss one that starts to.
func recordingCommands() []string {
	var out []string
	for _, c := range commands {
		out = append(out, tracked(c.name, reflect.TypeOf(c.cmd))...)
	}
	sort.Strings(out)
	return out
}

// tracked is name if command type t embeds trackFlags, plus its
// subcommands (fields tagged cmd) that do, as "name sub".
func tracked(name string, t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		_, isCmd := f.Tag.Lookup("cmd")
		switch {
		case f.Anonymous && f.Type == reflect.TypeOf(trackFlags{}):
			out = append(out, name)
		case isCmd:
			sub := f.Tag.Get("name")
			if sub == "" {
				sub = strings.ToLower(f.Name)
			}
			out = append(out, tracked(name+" "+sub, f.Type)...)
		}
	}
	return out
}
