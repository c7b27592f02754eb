package assertd

import (
	"fmt"
	htmltemplate "html/template"
	"math"
	"net"
	"net/url"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/common/helpers/templates"
	"github.com/prometheus/common/model"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// TemplateFuncs are the functions that annotation, lock and step templates
// may call, besides text/template's built-ins. Where a name is also one of
// Prometheus' template functions, the function takes the same arguments and
// renders the same text as in a Prometheus alerting rule; lower, upper,
// trim and join are assertd's own.
func TemplateFuncs() template.FuncMap {
	return template.FuncMap{
		"humanize":           humanize,
		"humanize1024":       humanize1024,
		"humanizeDuration":   templates.HumanizeDuration,
		"humanizePercentage": humanizePercentage,
		"humanizeTimestamp":  templates.HumanizeTimestamp,
		"toTime":             toTime,
		"toDuration":         toDuration,
		"parseDuration":      parseDuration,
		"title":              title,
		"toUpper":            strings.ToUpper,
		"toLower":            strings.ToLower,
		"match":              regexp.MatchString,
		"reReplaceAll":       reReplaceAll,
		"stripPort":          stripPort,
		"stripDomain":        stripDomain,
		"urlQueryEscape":     url.QueryEscape,
		"safeHtml":           safeHTML,
		"args":               args,

		"lower": strings.ToLower,
		"upper": strings.ToUpper,
		"trim":  strings.TrimSpace,
		"join":  func(sep string, s []string) string { return strings.Join(s, sep) },
	}
}

// prometheusOnly are Prometheus' template functions that assertd's
// templates do not offer, with what to write instead.
var prometheusOnly = map[string]string{
	"query":       queryHint,
	"first":       queryHint,
	"label":       queryHint,
	"value":       queryHint,
	"strvalue":    queryHint,
	"sortByLabel": queryHint,
	"now":         "the evaluation time reaches templates as a query: add query: {t: time()} to the assert and write {{ .Values.t }}",
	"externalURL": "templates are not given assertd's external URL: write the URL literally",
	"pathPrefix":  "templates are not given assertd's external URL: write its path literally",
	"graphLink":   "it links into Prometheus' own UI: write the link to your Prometheus literally, such as https://prometheus.example/graph?g0.expr={{ urlQueryEscape \"up == 0\" }}",
	"tableLink":   "it links into Prometheus' own UI: write the link to your Prometheus literally, such as https://prometheus.example/graph?g0.expr={{ urlQueryEscape \"up == 0\" }}&g0.tab=1",
}

const queryHint = "templates do not run PromQL: add the expression to the assert's query: (such as query: {free_bytes: node_filesystem_free_bytes}) and write {{ .Values.free_bytes }}"

// prometheusVars are the variables a Prometheus rule's templates have,
// with what to write in assertd's.
var prometheusVars = map[string]string{
	"$labels":         "write .Labels (such as {{ .Labels.instance }})",
	"$value":          "write .Values and the query's name (such as {{ .Values.p99_ms }})",
	"$externalLabels": "templates are not given external labels: write the value literally",
	"$externalURL":    "templates are not given assertd's external URL: write the URL literally",
}

var (
	undefinedFunction = regexp.MustCompile(`^function "([^"]+)" not defined$`)
	undefinedVariable = regexp.MustCompile(`^undefined variable "([^"]+)"$`)
)

// parseHint says what to write instead of a Prometheus function or variable
// that a template's parse error (msg, without its position) names.
func parseHint(msg string) string {
	if m := undefinedFunction.FindStringSubmatch(msg); m != nil {
		if h, ok := prometheusOnly[m[1]]; ok {
			return fmt.Sprintf("%s: %s is one of Prometheus' template functions that assertd does not offer; %s", msg, m[1], h)
		}
	}
	if m := undefinedVariable.FindStringSubmatch(msg); m != nil {
		if h, ok := prometheusVars[m[1]]; ok {
			return fmt.Sprintf("%s: %s is a variable of Prometheus' rule templates; %s", msg, m[1], h)
		}
	}
	return msg
}

// humanize, humanize1024 and humanizePercentage are Prometheus' (its
// template engine defines them inline, so they are written out here).

func humanize(i any) (string, error) {
	v, err := templates.ConvertToFloat(i)
	if err != nil {
		return "", err
	}
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v), nil
	}
	if math.Abs(v) >= 1 {
		prefix := ""
		for _, p := range []string{"k", "M", "G", "T", "P", "E", "Z", "Y"} {
			if math.Abs(v) < 1000 {
				break
			}
			prefix = p
			v /= 1000
		}
		return fmt.Sprintf("%.4g%s", v, prefix), nil
	}
	prefix := ""
	for _, p := range []string{"m", "u", "n", "p", "f", "a", "z", "y"} {
		if math.Abs(v) >= 1 {
			break
		}
		prefix = p
		v *= 1000
	}
	return fmt.Sprintf("%.4g%s", v, prefix), nil
}

func humanize1024(i any) (string, error) {
	v, err := templates.ConvertToFloat(i)
	if err != nil {
		return "", err
	}
	if math.Abs(v) <= 1 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v), nil
	}
	prefix := ""
	for _, p := range []string{"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"} {
		if math.Abs(v) < 1024 {
			break
		}
		prefix = p
		v /= 1024
	}
	return fmt.Sprintf("%.4g%s", v, prefix), nil
}

func humanizePercentage(i any) (string, error) {
	v, err := templates.ConvertToFloat(i)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%.4g%%", v*100), nil
}

func toTime(i any) (*time.Time, error) {
	v, err := templates.ConvertToFloat(i)
	if err != nil {
		return nil, err
	}
	return templates.FloatToTime(v)
}

func toDuration(i any) (*time.Duration, error) {
	v, err := templates.ConvertToFloat(i)
	if err != nil {
		return nil, err
	}
	d := time.Duration(v * float64(time.Second))
	return &d, nil
}

func parseDuration(s string) (float64, error) {
	d, err := model.ParseDurationAllowNegative(s)
	if err != nil {
		return 0, err
	}
	return float64(time.Duration(d)) / float64(time.Second), nil
}

// title is Prometheus' title; a Caser keeps state, so each call has its own.
func title(s string) string {
	return cases.Title(language.AmericanEnglish, cases.NoLower).String(s)
}

// reReplaceAll replaces like Prometheus' reReplaceAll; a pattern that does
// not compile is an error (Prometheus' panics, and the expansion fails).
func reReplaceAll(pattern, repl, text string) (string, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "", err
	}
	return re.ReplaceAllString(text, repl), nil
}

func stripPort(hostPort string) string {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return hostPort
	}
	return host
}

func stripDomain(hostPort string) string {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		host = hostPort
	}
	if net.ParseIP(host) != nil {
		return hostPort
	}
	host, _, _ = strings.Cut(host, ".")
	if port != "" {
		return net.JoinHostPort(host, port)
	}
	return host
}

// safeHTML only marks text as HTML: a text template prints it as it is.
func safeHTML(s string) htmltemplate.HTML { return htmltemplate.HTML(s) }

func args(vs ...any) map[string]any {
	m := make(map[string]any, len(vs))
	for i, v := range vs {
		m[fmt.Sprintf("arg%d", i)] = v
	}
	return m
}
