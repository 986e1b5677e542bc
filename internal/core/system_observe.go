package core

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"sort"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/storage"
	"github.com/arcasec/arca/internal/version"
)

// The sys/ paths that describe the server itself: metrics, host
// information, version history.

func (b *systemBackend) observePaths() []*fw.Path {
	rd, list := logical.ReadOperation, logical.ListOperation
	type opmap = map[logical.Operation]fw.OperationFunc
	return []*fw.Path{
		{Pattern: "metrics", Fields: map[string]*fw.FieldSchema{"format": {Type: fw.TypeString, Description: "prometheus for the text exposition format; JSON otherwise"}}, Operations: opmap{rd: b.metrics}},
		{Pattern: "host-info", Operations: opmap{rd: b.hostInfo}},
		{Pattern: "version-history/?", Operations: opmap{list: b.versionHistory}},
	}
}

func (b *systemBackend) metrics(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	families, err := b.core.metrics.registry.Gather()
	if err != nil {
		return nil, err
	}
	switch d.String("format") {
	case "prometheus":
		var buf bytes.Buffer
		format := expfmt.NewFormat(expfmt.TypeTextPlain)
		enc := expfmt.NewEncoder(&buf, format)
		for _, mf := range families {
			if err := enc.Encode(mf); err != nil {
				return nil, err
			}
		}
		return &logical.Response{Raw: buf.Bytes(), RawContentType: string(format)}, nil
	case "", "json":
	default:
		return nil, logical.BadRequest("unknown metrics format %q (prometheus or json)", d.String("format"))
	}
	// The JSON shape of Vault's in-memory sink: gauges, counters, samples.
	gauges, counters, samples := []any{}, []any{}, []any{}
	for _, mf := range families {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Gauge != nil:
				gauges = append(gauges, map[string]any{"Name": name, "Value": finite(m.Gauge.GetValue()), "Labels": labels})
			case m.Untyped != nil:
				gauges = append(gauges, map[string]any{"Name": name, "Value": finite(m.Untyped.GetValue()), "Labels": labels})
			case m.Counter != nil:
				v := finite(m.Counter.GetValue())
				counters = append(counters, map[string]any{"Name": name, "Count": v, "Sum": v, "Labels": labels})
			case m.Histogram != nil:
				h := m.Histogram
				n, sum := h.GetSampleCount(), finite(h.GetSampleSum())
				mean := 0.0
				if n > 0 {
					mean = sum / float64(n)
				}
				buckets := map[string]uint64{}
				for _, bk := range h.GetBucket() {
					buckets[formatBound(bk.GetUpperBound())] = bk.GetCumulativeCount()
				}
				samples = append(samples, map[string]any{"Name": name, "Count": n, "Sum": sum, "Mean": mean, "Buckets": buckets, "Labels": labels})
			case m.Summary != nil:
				s := m.Summary
				n, sum := s.GetSampleCount(), finite(s.GetSampleSum())
				mean := 0.0
				if n > 0 {
					mean = sum / float64(n)
				}
				samples = append(samples, map[string]any{"Name": name, "Count": n, "Sum": sum, "Mean": mean, "Labels": labels})
			}
		}
	}
	raw, err := json.Marshal(map[string]any{
		"Timestamp": time.Now().UTC().Format("2006-01-02 15:04:05 -0700 MST"),
		"Gauges":    gauges,
		"Counters":  counters,
		"Samples":   samples,
		"Points":    []any{},
	})
	if err != nil {
		return nil, err
	}
	return &logical.Response{Raw: raw, RawContentType: "application/json"}, nil
}

// finite keeps NaN and infinities (which JSON cannot carry) out of the
// JSON form.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

func formatBound(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	raw, _ := json.Marshal(v)
	return string(raw)
}

func (b *systemBackend) hostInfo(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	data := map[string]any{"timestamp": time.Now().UTC().Format(time.RFC3339Nano)}
	var warnings []string
	if v, err := cpu.InfoWithContext(ctx); err == nil {
		data["cpu"] = v
	} else {
		warnings = append(warnings, "cpu: "+err.Error())
	}
	if v, err := cpu.TimesWithContext(ctx, false); err == nil {
		data["cpu_times"] = v
	} else {
		warnings = append(warnings, "cpu_times: "+err.Error())
	}
	if parts, err := disk.PartitionsWithContext(ctx, false); err == nil {
		var usage []*disk.UsageStat
		for _, p := range parts {
			if u, err := disk.UsageWithContext(ctx, p.Mountpoint); err == nil {
				usage = append(usage, u)
			}
		}
		data["disk"] = usage
	} else {
		warnings = append(warnings, "disk: "+err.Error())
	}
	if v, err := host.InfoWithContext(ctx); err == nil {
		data["host"] = v
	} else {
		warnings = append(warnings, "host: "+err.Error())
	}
	if v, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		data["memory"] = v
	} else {
		warnings = append(warnings, "memory: "+err.Error())
	}
	return &logical.Response{Data: data, Warnings: warnings}, nil
}

// versionKey names this build in sys/version-history: the Vault API level
// it speaks, with Arca's release as build metadata.
var versionKey = version.VaultAPI + "+arca." + version.Arca

type versionRecord struct {
	Installed time.Time `json:"timestamp_installed"`
}

const versionPrefix = "core/versions/"

// recordVersion notes, once, when this version first unsealed the storage.
func (c *Core) recordVersion(ctx context.Context) error {
	e, err := c.barrier.Get(ctx, versionPrefix+versionKey)
	if err != nil || e != nil {
		return err
	}
	raw, _ := json.Marshal(versionRecord{Installed: time.Now().UTC()})
	return c.barrier.Put(ctx, &storage.Entry{Key: versionPrefix + versionKey, Value: raw})
}

func (b *systemBackend) versionHistory(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	keys, err := b.core.barrier.List(ctx, versionPrefix)
	if err != nil {
		return nil, err
	}
	type rec struct {
		key string
		versionRecord
	}
	var recs []rec
	for _, k := range keys {
		var vr versionRecord
		if ok, err := b.core.getJSON(ctx, versionPrefix+k, &vr); err != nil {
			return nil, err
		} else if ok {
			recs = append(recs, rec{k, vr})
		}
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Installed.Before(recs[j].Installed) })
	out := make([]string, len(recs))
	info := map[string]any{}
	var prev any
	for i, r := range recs {
		out[i] = r.key
		info[r.key] = map[string]any{
			"timestamp_installed": r.Installed.Format(time.RFC3339),
			"previous_version":    prev,
			"build_date":          nil,
		}
		prev = r.key
	}
	return &logical.Response{Data: map[string]any{"keys": out, "key_info": info}}, nil
}
