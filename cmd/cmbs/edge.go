package main

import (
	"fmt"

	"github.com/houssem/cmbs/cmd/cmbs/xapp"
	"github.com/houssem/cmbs/config"
)

// loadServeConfig assembles serve's configuration: from --config, or from
// the controls and messaging ports of the xApp descriptor at xappPath,
// then CMBS_* variables and flags either way.
func loadServeConfig(flags *config.Flags, xappPath string) (config.Config, error) {
	if xappPath == "" {
		return flags.Load()
	}
	if flags.ConfigPath() != "" {
		return config.Config{}, fmt.Errorf("%w: serve: --config and --xapp-config both give the configuration; use one", errUsage)
	}
	base, err := xapp.ReadConfig(xappPath)
	if err != nil {
		return config.Config{}, err
	}
	return flags.LoadOver(base)
}
