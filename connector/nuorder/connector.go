// Package nuorder is the NuOrder connector: an OAuth 1.0a client for
// NuOrder's REST API and the streams built on it. Which endpoints it calls,
// and how sure we are of each, is in package api; the fake API it is tested
// against (and that plugins/nuorder-plugin serves as its --sandbox) is package
// fakeapi, which this package does not import.
package nuorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
)

// Version is the connector's version, reported by Info.
const Version = "0.1.0"

// DefaultBaseURL is NuOrder's production host as integrations call it in
// 2024-26 (shared/nuorder-api.md §13.7); NuOrder's sandbox is
// https://sandbox1.nuorder.com. wholesale.nuorder.com appears only in
// 2014-19 sources.
const DefaultBaseURL = "https://next.nuorder.com"

// Sandbox starts the stand-in NuOrder the connector uses in sandbox mode
// (--sandbox): a server with demo data, the credentials it accepts and the
// brand's warehouses. The plugin's main package supplies it (the fake API);
// the connector itself carries no test code. dir, when not empty, is a
// folder where the sandbox keeps what it is sent between runs
// (ConfigureRequest.SandboxDir).
type Sandbox func(dir string) (SandboxEnv, error)

// SandboxEnv is a started sandbox.
type SandboxEnv struct {
	URL         string
	Credentials Credentials
	Warehouses  []WarehouseConfig
	// Close stops it.
	Close func() error
}

// Config is the connector's `config` block.
type Config struct {
	BaseURL        string   `json:"base_url"`
	ConsumerKey    string   `json:"consumer_key"`
	ConsumerSecret string   `json:"consumer_secret"`
	Token          string   `json:"token"`
	TokenSecret    string   `json:"token_secret"`
	Seasons        []string `json:"seasons"`
	FetchProducts  *bool    `json:"fetch_products"`
	ShowLocations  *bool    `json:"show_locations"`
	SyncCompanies  *bool    `json:"sync_companies"`
	MaxInFlight    *float64 `json:"max_in_flight"`
	// MaxRequestsPerSecond spaces the starts of requests (unset: no cap
	// beyond MaxInFlight).
	MaxRequestsPerSecond *float64 `json:"max_requests_per_second"`
	CursorLag            *float64 `json:"cursor_lag_seconds"`
	// Timeouts of every request, in seconds (see Timeouts).
	ConnectTimeout  *float64 `json:"connect_timeout_seconds"`
	ResponseTimeout *float64 `json:"response_timeout_seconds"`
	IdleTimeout     *float64 `json:"idle_timeout_seconds"`
	// Retries of a failed request (429, 5xx, timeouts, dropped
	// connections) and the longest wait between two attempts.
	MaxRetries   *float64 `json:"max_retries"`
	RetryMaxWait *float64 `json:"retry_max_wait_seconds"`
	// MaxDocumentMiB bounds one document of a listing.
	MaxDocumentMiB *float64 `json:"max_document_mib"`
	// MaxAnswerMiB and MaxAnswerSeconds bound one whole answer.
	MaxAnswerMiB     *float64 `json:"max_answer_mib"`
	MaxAnswerSeconds *float64 `json:"max_answer_seconds"`
	// Warehouses are the brand's NuOrder warehouses. NuOrder has no
	// warehouse listing and its products carry "warehouses": [] (shared/
	// nuorder-api.md §6, §13.3), so the user names them.
	Warehouses []WarehouseConfig `json:"warehouses"`
}

// WarehouseConfig is one warehouse of the config's warehouses list: its
// NuOrder id (24 hex digits, from NuOrder's admin or its support), and the
// code and name the ERP uses for it (inventory rows may name it by id or
// code).
type WarehouseConfig struct {
	ID   string  `json:"id"`
	Code *string `json:"code"`
	Name *string `json:"name"`
}

// DefaultCursorLag is how far behind the clock an incremental read's upper
// bound stays, by default. It absorbs clock skew between NuOrder and this
// host and documents changed while NuOrder was producing a listing; a
// document changed within the lag is read by the next run.
const DefaultCursorLag = 60 * time.Second

// lag is the configured cursor lag.
func (c *Connector) lag() time.Duration {
	if c.cfg.CursorLag != nil {
		return time.Duration(*c.cfg.CursorLag * float64(time.Second))
	}
	return DefaultCursorLag
}

func (c Config) enabled(flag *bool) bool { return flag == nil || *flag }

var stringType = json.RawMessage(`"string"`)

// schema is the connector's config schema.
var schema = connector.ConfigSchema{Attributes: []connector.Attribute{
	{Name: "base_url", Type: stringType, Identity: true, Description: "NuOrder host, default " + DefaultBaseURL},
	{Name: "consumer_key", Type: stringType, Required: true, Identity: true, Description: "from NuOrder Admin > API Management"},
	{Name: "consumer_secret", Type: stringType, Required: true, Sensitive: true},
	{Name: "token", Type: stringType, Required: true},
	{Name: "token_secret", Type: stringType, Required: true, Sensitive: true},
	{Name: "seasons", Type: json.RawMessage(`["list","string"]`), Description: "read only these seasons' products"},
	{Name: "fetch_products", Type: json.RawMessage(`"bool"`), Description: "enable the products stream (default true)"},
	{Name: "show_locations", Type: json.RawMessage(`"bool"`), Description: "enable the locations stream (default true)"},
	{Name: "sync_companies", Type: json.RawMessage(`"bool"`), Description: "enable the companies stream (default true)"},
	{Name: "cursor_lag_seconds", Type: json.RawMessage(`"number"`), Description: "how far behind now incremental reads stop (default 60)"},
	{Name: "warehouses", Type: json.RawMessage(`["list",["object",{"id":"string","code":"string","name":"string"},["code","name"]]]`),
		Description: `the brand's warehouses, e.g. [{ id = "628d4fa01f9aa012b5f1a1a5", code = "MAIN", name = "Main" }]: NuOrder has no warehouse listing`},
	{Name: "connect_timeout_seconds", Type: json.RawMessage(`"number"`), Description: "connecting and the TLS handshake, each (default 10)"},
	{Name: "response_timeout_seconds", Type: json.RawMessage(`"number"`), Description: "from a request to NuOrder's first answer (default 120)"},
	{Name: "idle_timeout_seconds", Type: json.RawMessage(`"number"`), Description: "longest silence inside an answer's body (default 60)"},
	{Name: "max_retries", Type: json.RawMessage(`"number"`), Description: "retries of a failed request, 0 to 10 (default 4)"},
	{Name: "retry_max_wait_seconds", Type: json.RawMessage(`"number"`), Description: "longest wait between attempts; a Retry-After longer than this fails at once (default 30)"},
	{Name: "max_document_mib", Type: json.RawMessage(`"number"`), Description: "the largest single document read, in MiB (default 64)"},
	{Name: "max_answer_mib", Type: json.RawMessage(`"number"`), Description: "the largest whole answer read, decompressed, in MiB (default 16384)"},
	{Name: "max_answer_seconds", Type: json.RawMessage(`"number"`), Description: "the longest an answer may take to its last byte (default 7200)"},
	{Name: "max_in_flight", Type: json.RawMessage(`"number"`), Description: "requests in flight at once (default 5)"},
	{Name: "max_requests_per_second", Type: json.RawMessage(`"number"`), Description: "requests started per second at most (default: no cap beyond max_in_flight); set it to the tenant's rate limit to be read at that rate without 429s"},
}}

// Connector is the NuOrder connector. Use New.
type Connector struct {
	logger hclog.Logger
	cfg    Config
	client *Client
	// startSandbox, when set, serves sandbox mode; sandbox is the one
	// started.
	startSandbox Sandbox
	sandbox      *SandboxEnv
	// cacheDir is where the SKU cache lives (ConfigureRequest.CacheDir;
	// empty: no cache, pushes read the whole catalog).
	cacheDir string
	// now is the clock reads fix their windows with (nil: time.Now); tests
	// move it to show what a run a day later does.
	now func() time.Time
}

// clock is the time a read starts at.
func (c *Connector) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

var _ connector.Connector = (*Connector)(nil)

// New returns an unconfigured NuOrder connector. Without a sandbox,
// Configure refuses sandbox mode.
func New(logger hclog.Logger, sandbox Sandbox) *Connector {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Connector{logger: logger, startSandbox: sandbox}
}

// Info implements connector.Connector.
func (c *Connector) Info(context.Context) (connector.Info, error) {
	return connector.Info{Name: "nuorder", Version: Version}, nil
}

// ConfigSchema implements connector.Connector.
func (c *Connector) ConfigSchema(context.Context) (connector.ConfigSchema, error) {
	return schema, nil
}

// Configure implements connector.Connector. In sandbox mode it starts the fake
// NuOrder API on loopback with the demo catalog and uses its credentials;
// the credentials of the config are then ignored.
func (c *Connector) Configure(_ context.Context, req connector.ConfigureRequest) error {
	var cfg Config
	if err := json.Unmarshal(req.Config, &cfg); err != nil {
		return fmt.Errorf("nuorder config: %w", err)
	}
	// The toggles shape the catalog even when the credentials are refused
	// below: `pipeline streams` shows a disabled stream as disabled.
	c.cfg = cfg
	inFlight := 5
	if cfg.MaxInFlight != nil {
		if *cfg.MaxInFlight < 1 || *cfg.MaxInFlight > 64 {
			return fmt.Errorf("nuorder config: max_in_flight must be between 1 and 64, got %v", *cfg.MaxInFlight)
		}
		inFlight = int(*cfg.MaxInFlight)
	}
	if cfg.CursorLag != nil && (*cfg.CursorLag < 0 || *cfg.CursorLag > 86400) {
		return fmt.Errorf("nuorder config: cursor_lag_seconds must be between 0 and 86400, got %v", *cfg.CursorLag)
	}
	timeouts := DefaultTimeouts
	for _, t := range []struct {
		name string
		v    *float64
		into *time.Duration
	}{{"connect_timeout_seconds", cfg.ConnectTimeout, &timeouts.Connect}, {"response_timeout_seconds", cfg.ResponseTimeout, &timeouts.Response},
		{"idle_timeout_seconds", cfg.IdleTimeout, &timeouts.Idle}} {
		if t.v == nil {
			continue
		}
		if *t.v <= 0 || *t.v > 3600 {
			return fmt.Errorf("nuorder config: %s must be more than 0 and at most 3600, got %v", t.name, *t.v)
		}
		*t.into = time.Duration(*t.v * float64(time.Second))
	}
	creds := Credentials{cfg.ConsumerKey, cfg.ConsumerSecret, cfg.Token, cfg.TokenSecret}
	c.cacheDir = req.CacheDir
	if req.Sandbox {
		if c.startSandbox == nil {
			return errors.New("nuorder: this build has no sandbox")
		}
		sb, err := c.startSandbox(req.SandboxDir)
		if err != nil {
			return fmt.Errorf("starting the NuOrder sandbox: %w", err)
		}
		c.sandbox = &sb
		// The sandbox's URL, credentials and warehouses, in place of any
		// the config names.
		cfg.BaseURL, creds, cfg.Warehouses = sb.URL, sb.Credentials, sb.Warehouses
		c.logger.Info("using the NuOrder sandbox (fake API with demo data)", "url", sb.URL)
	} else {
		var missing []string
		for name, v := range map[string]string{"consumer_key": creds.ConsumerKey, "consumer_secret": creds.ConsumerSecret,
			"token": creds.Token, "token_secret": creds.TokenSecret} {
			if v == "" {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("nuorder config: %s must not be empty", strings.Join(missing, ", "))
		}
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	codes := map[string]string{}
	for i, w := range cfg.Warehouses {
		if !objectIDPattern.MatchString(w.ID) {
			return fmt.Errorf("nuorder config: warehouses[%d].id = %q is not a NuOrder id (24 hex digits)", i, w.ID)
		}
		if w.Code != nil && *w.Code != "" {
			k := strings.ToLower(*w.Code)
			if other, dup := codes[k]; dup && other != w.ID {
				return fmt.Errorf("nuorder config: warehouses: code %q names two warehouses (%s and %s)", *w.Code, other, w.ID)
			}
			codes[k] = w.ID
		}
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("nuorder config: base_url %q is not an http(s) URL", cfg.BaseURL)
	}
	c.cfg = cfg
	c.client = NewClient(cfg.BaseURL, creds, inFlight, timeouts, c.logger)
	if r := cfg.MaxRequestsPerSecond; r != nil {
		if *r <= 0 || *r > 10000 {
			return fmt.Errorf("nuorder config: max_requests_per_second must be above 0 and at most 10000, got %v", *r)
		}
		c.client.pace = newPacer(*r)
	}
	if cfg.MaxRetries != nil {
		if *cfg.MaxRetries < 0 || *cfg.MaxRetries > 10 {
			return fmt.Errorf("nuorder config: max_retries must be between 0 and 10, got %v", *cfg.MaxRetries)
		}
		c.client.MaxAttempts = 1 + int(*cfg.MaxRetries)
	}
	if cfg.MaxAnswerMiB != nil {
		if *cfg.MaxAnswerMiB < 1 || *cfg.MaxAnswerMiB > 1<<20 {
			return fmt.Errorf("nuorder config: max_answer_mib must be between 1 and 1048576, got %v", *cfg.MaxAnswerMiB)
		}
		c.client.timeouts.AnswerBytes = int64(*cfg.MaxAnswerMiB * (1 << 20))
	}
	if cfg.MaxAnswerSeconds != nil {
		if *cfg.MaxAnswerSeconds <= 0 || *cfg.MaxAnswerSeconds > 86400 {
			return fmt.Errorf("nuorder config: max_answer_seconds must be more than 0 and at most 86400, got %v", *cfg.MaxAnswerSeconds)
		}
		c.client.timeouts.Answer = time.Duration(*cfg.MaxAnswerSeconds * float64(time.Second))
	}
	if cfg.MaxDocumentMiB != nil {
		if *cfg.MaxDocumentMiB < 1 || *cfg.MaxDocumentMiB > 4096 {
			return fmt.Errorf("nuorder config: max_document_mib must be between 1 and 4096, got %v", *cfg.MaxDocumentMiB)
		}
		c.client.maxDocument = int64(*cfg.MaxDocumentMiB * (1 << 20))
	}
	if cfg.RetryMaxWait != nil {
		if *cfg.RetryMaxWait < 0.001 || *cfg.RetryMaxWait > 3600 {
			return fmt.Errorf("nuorder config: retry_max_wait_seconds must be more than 0 and at most 3600, got %v", *cfg.RetryMaxWait)
		}
		c.client.MaxBackoff = time.Duration(*cfg.RetryMaxWait * float64(time.Second))
		c.client.BaseBackoff = min(c.client.BaseBackoff, c.client.MaxBackoff)
	}
	return nil
}

// objectIDPattern is a MongoDB ObjectId, the form of every NuOrder id.
var objectIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{24}$`)

// Streams implements connector.Connector.
func (c *Connector) Streams(context.Context) ([]connector.Stream, error) {
	disabled := func(flag *bool, attr string) string {
		if c.cfg.enabled(flag) {
			return ""
		}
		return attr + " = false in the connector config"
	}
	noWarehouses := ""
	if len(c.cfg.Warehouses) == 0 {
		noWarehouses = "no warehouses in the connector config: NuOrder has no warehouse listing, so unless the products name theirs, " +
			`every push fails; set warehouses = [{ id = "<24-hex NuOrder id>", code = "MAIN" }]`
	}
	return []connector.Stream{
		{Name: "products", Kind: connector.Source, Schema: ProductsSchema, PrimaryKey: []string{"_id"}, CursorField: "modified_on",
			Description: "products (style-colour) with sizes/SKUs, pricing per currency and warehouses", Options: []connector.Option{productRefresh},
			Disabled: disabled(c.cfg.FetchProducts, "fetch_products")},
		{Name: "locations", Kind: connector.Source, Schema: LocationsSchema, PrimaryKey: []string{"id"}, CursorField: "modified_on",
			Description: "warehouses (inventory locations): those the config names, or, without them (or with from_products), those products embed", Options: []connector.Option{locationsFromProducts},
			Disabled: disabled(c.cfg.ShowLocations, "show_locations")},
		{Name: "companies", Kind: connector.Source, Schema: CompaniesSchema, PrimaryKey: []string{"_id"}, CursorField: "modified_on",
			Description: "companies (retailer accounts) created or modified, with addresses, reps and buyers", Options: []connector.Option{},
			Disabled: disabled(c.cfg.SyncCompanies, "sync_companies")},
		{Name: "orders", Kind: connector.Source, Schema: OrdersSchema, PrimaryKey: []string{"_id"}, CursorField: "modified_on",
			Description: "orders (approved, then processed, shipped, cancelled) with retailer, addresses, line items, shipments",
			Options:     orderOptions, ReadsWith: []string{"order_lines", "shipments"}},
		{Name: "order_lines", Kind: connector.Source, Schema: OrderLinesSchema, PrimaryKey: []string{"order_id", "line_id", "size"}, CursorField: "modified_on",
			Description: "the same orders, one row per order x line item x size", Options: orderOptions, ReadsWith: []string{"orders", "shipments"}},
		{Name: "shipments", Kind: connector.Source, Schema: ShipmentsSchema, PrimaryKey: []string{"order_id", "shipment_no"}, CursorField: "modified_on",
			Description: "the shipments recorded on those orders (type, status, date, carrier, tracking numbers, shipped lines)",
			Options:     orderOptions, ReadsWith: []string{"orders", "order_lines"}},
		{Name: "inventory", Kind: connector.Sink, Schema: InventorySchema,
			Description: "stock levels per SKU and warehouse: immediate, future-dated or prebook replenishments, then an inventory flag refresh",
			Notice:      noWarehouses, Options: []connector.Option{inventoryReplace}},
		{Name: "fulfillment", Kind: connector.Sink, Schema: FulfillmentSchema,
			Description: "shipments (tracking numbers, carrier, shipped lines) recorded on orders, which move to shipped",
			Options:     []connector.Option{recordShipments}},
		{Name: "orders", Kind: connector.Sink, Schema: OrdersSinkSchema, PrimaryKey: []string{"order_number"},
			Description: "create orders (phone, EDI, ERP) from one row per line and size; an order number NuOrder has is not created again",
			Options:     []connector.Option{}},
		{Name: "order_status", Kind: connector.Sink, Schema: OrderStatusSchema,
			Description: "move orders, by _id or number, to a status: processed, shipped, cancelled (final), back to pending or review, ...",
			Options:     []connector.Option{}},
		{Name: "companies", Kind: connector.Sink, Schema: CompaniesSinkSchema, PrimaryKey: []string{"code"},
			Description: "create, update or archive (set inactive) companies by code", Options: []connector.Option{companiesMethod}},
	}, nil
}

// Check implements connector.Connector by listing one season or the
// products, which needs valid credentials.
func (c *Connector) Check(ctx context.Context) error {
	if c.client == nil {
		return connector.ErrNotConfigured
	}
	// A silent NuOrder is reported within a minute, whatever the run's
	// timeouts: at most CheckAttempts tries of CheckResponseTimeout each.
	ctx = withLimits(ctx, CheckResponseTimeout, CheckAttempts)
	e, params := api.ProductList, []string(nil)
	if len(c.cfg.Seasons) > 0 {
		e, params = api.ProductSeasonList, c.cfg.Seasons[:1]
	}
	errStop := errors.New("stop")
	err := c.client.streamArray(ctx, e, params, func(json.RawMessage) error { return errStop })
	if errors.Is(err, errStop) {
		c.logger.Info("NuOrder accepts the credentials", "signature_scheme", c.client.Scheme())
		return nil
	}
	return err
}

// Check's own limits: a check is a question to answer quickly, so it waits
// less than a run, whose requests may be slow under load (the run's
// response_timeout_seconds is 120 by default). Two tries of 15 s, a second
// or so apart, report a silent NuOrder in about 31 s; a slow but living
// one starts the products listing well within 15 s.
const (
	CheckResponseTimeout = 15 * time.Second
	CheckAttempts        = 2
)

// Read implements connector.Connector.
func (c *Connector) Read(ctx context.Context, req connector.ReadRequest, emit connector.EmitFunc) error {
	if c.client == nil {
		return connector.ErrNotConfigured
	}
	streams, _ := c.Streams(ctx)
	st, err := connector.CheckRead(streams, req)
	if err != nil {
		return err
	}
	if len(req.Streams) > 1 {
		return c.readOrderStreams(ctx, req, emit)
	}
	cp := req.Streams[0].Checkpoint
	switch st.Name {
	case "products":
		return c.readProducts(ctx, cp, req.Options, emit.For(st.Name))
	case "locations":
		return c.readLocations(ctx, cp, req.Options, emit.For(st.Name))
	case "companies":
		return c.readCompanies(ctx, cp, req.Options, emit.For(st.Name))
	case "orders", "order_lines", "shipments":
		return c.readOrderStreams(ctx, req, emit)
	}
	return fmt.Errorf("%w %q", connector.ErrUnknownStream, st.Name)
}

// Write implements connector.Connector: the inventory, fulfillment and
// companies sink streams.
func (c *Connector) Write(ctx context.Context, req connector.WriteRequest, in connector.RecordIterator, results connector.ResultFunc) (connector.WriteSummary, error) {
	if c.client == nil {
		return connector.WriteSummary{}, connector.ErrNotConfigured
	}
	switch req.Stream {
	case "inventory":
		return c.writeInventory(ctx, req, in, results)
	case "fulfillment":
		return c.writeFulfillment(ctx, req, in, results)
	case "companies":
		return c.writeCompanies(ctx, req, in, results)
	case "order_status":
		return c.writeOrderStatus(ctx, req, in, results)
	case "orders":
		return c.writeOrders(ctx, req, in, results)
	}
	return connector.WriteSummary{}, fmt.Errorf("%w %q", connector.ErrUnknownStream, req.Stream)
}

// Stats implements connector.StatsReporter: the requests the configured
// client made (none before Configure).
func (c *Connector) Stats(context.Context) (connector.Stats, error) {
	if c.client == nil {
		return connector.Stats{}, nil
	}
	return c.client.Stats(), nil
}

var _ connector.StatsReporter = (*Connector)(nil)

// Close implements connector.Connector: it stops the sandbox, if any.
func (c *Connector) Close() error {
	if c.sandbox != nil && c.sandbox.Close != nil {
		return c.sandbox.Close()
	}
	return nil
}
