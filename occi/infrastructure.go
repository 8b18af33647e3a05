package occi

// OCCI 1.1 Infrastructure (GFD.184) identifiers.
const (
	InfraScheme          = "http://schemas.ogf.org/occi/infrastructure#"
	ComputeKind          = InfraScheme + "compute"
	StorageKind          = InfraScheme + "storage"
	NetworkKind          = InfraScheme + "network"
	NetworkInterfaceKind = InfraScheme + "networkinterface"
	StorageLinkKind      = InfraScheme + "storagelink"
	OSTemplateMixin      = InfraScheme + "os_tpl"
	ResourceTemplate     = InfraScheme + "resource_tpl"
	IPNetworkMixin       = "http://schemas.ogf.org/occi/infrastructure/network#ipnetwork"
	IPNetworkIfaceMixin  = "http://schemas.ogf.org/occi/infrastructure/networkinterface#ipnetworkinterface"

	computeActions  = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
	storageActions  = "http://schemas.ogf.org/occi/infrastructure/storage/action#"
	networkActions  = "http://schemas.ogf.org/occi/infrastructure/network/action#"
	nicActions      = "http://schemas.ogf.org/occi/infrastructure/networkinterface/action#"
	templateScheme  = "http://schemas.cmbs.local/occi/infrastructure/"
	ipv4or6         = `[0-9a-fA-F.:]+`
	dummyProvider   = "dummy"
	infraMutable    = true
	infraImmutable  = false
	infraRequired   = true
	infraOptional   = false
	infraNoDefault  = noDefault("")
	stateInactive   = "inactive"
	statePattern    = "active|inactive"
	allocationRegex = "dynamic|static"
)

// noDefault marks an attribute definition without a default value.
type noDefault string

// attrDef builds one attribute definition in the stored (pyOCNI) form.
func attrDef(typ string, mutable, required bool, def any, pattern, description string) map[string]any {
	d := map[string]any{"type": typ, "mutable": mutable, "required": required, "description": description}
	if _, none := def.(noDefault); !none {
		d["default"] = def
	}
	if pattern != "" {
		d["pattern"] = pattern
	}
	return d
}

// nest turns definitions by dotted name into the nested form categories
// store.
func nest(defs map[string]map[string]any) map[string]any {
	out := map[string]any{}
	for name, d := range defs {
		setPath(out, splitName(name), d)
	}
	return out
}

func infraAction(scheme, term, title string, attrs map[string]map[string]any) *Category {
	return &Category{Class: ClassAction, Scheme: scheme, Term: term, Title: title, Attributes: nest(attrs)}
}

// InfrastructureCategories returns the OCCI 1.1 Infrastructure model: the
// compute, storage and network kinds with their links (networkinterface,
// storagelink), the ipnetwork and ipnetworkinterface mixins, the os_tpl and
// resource_tpl template mixins with a few templates, and every action they
// offer. Each kind and mixin is served by the dummy provider. Actions come
// first so the kinds that offer them find them registered.
func InfrastructureCategories() []*Category {
	dummy := func() *Providers { return &Providers{Local: []string{dummyProvider}, Remote: []string{}} }
	method := func(pattern, def string) map[string]map[string]any {
		return map[string]map[string]any{"method": attrDef("string", infraMutable, infraOptional, def, pattern, "how the action is carried out")}
	}
	cats := []*Category{
		infraAction(computeActions, "start", "Start the compute instance", nil),
		infraAction(computeActions, "stop", "Stop the compute instance", method("graceful|acpioff|poweroff", "graceful")),
		infraAction(computeActions, "restart", "Restart the compute instance", method("graceful|warm|cold", "graceful")),
		infraAction(computeActions, "suspend", "Suspend the compute instance", method("hibernate|suspend", "suspend")),
		infraAction(storageActions, "online", "Bring the storage online", nil),
		infraAction(storageActions, "offline", "Take the storage offline", nil),
		infraAction(storageActions, "backup", "Back the storage up", nil),
		infraAction(storageActions, "snapshot", "Take a snapshot of the storage", nil),
		infraAction(storageActions, "resize", "Resize the storage", map[string]map[string]any{
			"size": attrDef("number", infraMutable, infraRequired, infraNoDefault, "", "new size in GiB"),
		}),
		infraAction(networkActions, "up", "Bring the network up", nil),
		infraAction(networkActions, "down", "Take the network down", nil),
		infraAction(nicActions, "up", "Bring the network interface up", nil),
		infraAction(nicActions, "down", "Take the network interface down", nil),
		{
			Class: ClassKind, Scheme: InfraScheme, Term: "compute", Title: "Compute Resource",
			Related: []string{ResourceKind}, Location: "/compute/", Providers: dummy(),
			Actions: []string{computeActions + "start", computeActions + "stop", computeActions + "restart", computeActions + "suspend"},
			Attributes: nest(map[string]map[string]any{
				"occi.compute.architecture": attrDef("string", infraMutable, infraOptional, infraNoDefault, "x86|x64", "CPU architecture of the instance"),
				"occi.compute.cores":        attrDef("integer", infraMutable, infraOptional, infraNoDefault, "", "number of virtual CPU cores"),
				"occi.compute.hostname":     attrDef("string", infraMutable, infraOptional, infraNoDefault, "", "fully qualified DNS hostname of the instance"),
				"occi.compute.speed":        attrDef("number", infraMutable, infraOptional, infraNoDefault, "", "CPU clock frequency in GHz"),
				"occi.compute.memory":       attrDef("number", infraMutable, infraOptional, infraNoDefault, "", "RAM in GiB"),
				"occi.compute.state":        attrDef("string", infraImmutable, infraOptional, stateInactive, "active|inactive|suspended|error", "current state of the instance"),
			}),
		},
		{
			Class: ClassKind, Scheme: InfraScheme, Term: "storage", Title: "Storage Resource",
			Related: []string{ResourceKind}, Location: "/storage/", Providers: dummy(),
			Actions: []string{storageActions + "online", storageActions + "offline", storageActions + "backup", storageActions + "snapshot", storageActions + "resize"},
			Attributes: nest(map[string]map[string]any{
				"occi.storage.size":  attrDef("number", infraMutable, infraRequired, infraNoDefault, "", "storage size in GiB"),
				"occi.storage.state": attrDef("string", infraImmutable, infraOptional, "offline", "online|offline|backup|snapshot|resize|degraded", "current state of the storage"),
			}),
		},
		{
			Class: ClassKind, Scheme: InfraScheme, Term: "network", Title: "Network Resource",
			Related: []string{ResourceKind}, Location: "/network/", Providers: dummy(),
			Actions: []string{networkActions + "up", networkActions + "down"},
			Attributes: nest(map[string]map[string]any{
				"occi.network.vlan":  attrDef("integer", infraMutable, infraOptional, infraNoDefault, "", "802.1q VLAN identifier, 0 to 4095"),
				"occi.network.label": attrDef("string", infraMutable, infraOptional, infraNoDefault, "", "tag of the network"),
				"occi.network.state": attrDef("string", infraImmutable, infraOptional, stateInactive, statePattern, "current state of the network"),
			}),
		},
		{
			Class: ClassKind, Scheme: InfraScheme, Term: "networkinterface", Title: "Network Interface Link",
			Related: []string{LinkKind}, Location: "/networkinterface/", Providers: dummy(),
			Actions: []string{nicActions + "up", nicActions + "down"},
			Attributes: nest(map[string]map[string]any{
				"occi.networkinterface.interface": attrDef("string", infraImmutable, infraOptional, infraNoDefault, "", "identifier of the interface, such as eth0"),
				"occi.networkinterface.mac":       attrDef("string", infraMutable, infraOptional, infraNoDefault, "([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}", "MAC address of the interface"),
				"occi.networkinterface.state":     attrDef("string", infraImmutable, infraOptional, stateInactive, statePattern, "current state of the interface"),
			}),
		},
		{
			Class: ClassKind, Scheme: InfraScheme, Term: "storagelink", Title: "Storage Link",
			Related: []string{LinkKind}, Location: "/storagelink/", Providers: dummy(),
			Attributes: nest(map[string]map[string]any{
				"occi.storagelink.deviceid":   attrDef("string", infraMutable, infraRequired, infraNoDefault, "", "device identifier as the hypervisor knows it, such as ide:0:0"),
				"occi.storagelink.mountpoint": attrDef("string", infraMutable, infraOptional, infraNoDefault, "", "where the storage is mounted in the guest"),
				"occi.storagelink.state":      attrDef("string", infraImmutable, infraOptional, stateInactive, "active|inactive|error", "current state of the link"),
			}),
		},
		{
			Class: ClassMixin, Scheme: "http://schemas.ogf.org/occi/infrastructure/network#", Term: "ipnetwork", Title: "IP Networking Mixin",
			Location: "/mixin/ipnetwork/", Applies: []string{NetworkKind}, Providers: dummy(),
			Attributes: nest(map[string]map[string]any{
				"occi.network.address":    attrDef("string", infraMutable, infraOptional, infraNoDefault, ipv4or6+`/[0-9]{1,3}`, "IP network address in CIDR notation"),
				"occi.network.gateway":    attrDef("string", infraMutable, infraOptional, infraNoDefault, ipv4or6, "IP address of the gateway"),
				"occi.network.allocation": attrDef("string", infraMutable, infraOptional, infraNoDefault, allocationRegex, "address allocation: dynamic or static"),
			}),
		},
		{
			Class: ClassMixin, Scheme: "http://schemas.ogf.org/occi/infrastructure/networkinterface#", Term: "ipnetworkinterface", Title: "IP Network Interface Mixin",
			Location: "/mixin/ipnetworkinterface/", Applies: []string{NetworkInterfaceKind}, Providers: dummy(),
			Attributes: nest(map[string]map[string]any{
				"occi.networkinterface.address":    attrDef("string", infraMutable, infraOptional, infraNoDefault, ipv4or6, "IP address of the interface"),
				"occi.networkinterface.gateway":    attrDef("string", infraMutable, infraOptional, infraNoDefault, ipv4or6, "IP address of the gateway"),
				"occi.networkinterface.allocation": attrDef("string", infraMutable, infraOptional, infraNoDefault, allocationRegex, "address allocation: dynamic or static"),
			}),
		},
		{
			Class: ClassMixin, Scheme: InfraScheme, Term: "os_tpl", Title: "Operating System Template",
			Location: "/mixin/os_tpl/", Applies: []string{ComputeKind}, Providers: dummy(),
		},
		{
			Class: ClassMixin, Scheme: InfraScheme, Term: "resource_tpl", Title: "Resource Template",
			Location: "/mixin/resource_tpl/", Applies: []string{ComputeKind}, Providers: dummy(),
		},
	}
	// Templates, as rOCCI-server's dummy backend ships some: os_tpl ones
	// name an image, resource_tpl ones set sizes by default.
	for _, t := range []struct{ term, title string }{
		{"debian12", "Debian 12 (bookworm)"},
		{"ubuntu2404", "Ubuntu 24.04 LTS (noble)"},
	} {
		cats = append(cats, &Category{
			Class: ClassMixin, Scheme: templateScheme + "os_tpl#", Term: t.term, Title: t.title,
			Related: []string{OSTemplateMixin}, Applies: []string{ComputeKind},
			Location: "/mixin/os_tpl/" + t.term + "/", Providers: dummy(),
		})
	}
	for _, t := range []struct {
		term, title   string
		cores, memory float64
	}{
		{"small", "Small instance: 1 core, 1 GiB of memory", 1, 1},
		{"medium", "Medium instance: 2 cores, 4 GiB of memory", 2, 4},
		{"large", "Large instance: 4 cores, 8 GiB of memory", 4, 8},
	} {
		cats = append(cats, &Category{
			Class: ClassMixin, Scheme: templateScheme + "resource_tpl#", Term: t.term, Title: t.title,
			Related: []string{ResourceTemplate}, Applies: []string{ComputeKind},
			Location: "/mixin/resource_tpl/" + t.term + "/", Providers: dummy(),
			Attributes: nest(map[string]map[string]any{
				"occi.compute.cores":  attrDef("integer", infraMutable, infraOptional, t.cores, "", "number of virtual CPU cores"),
				"occi.compute.memory": attrDef("number", infraMutable, infraOptional, t.memory, "", "RAM in GiB"),
			}),
		})
	}
	return cats
}
