package engine

import (
	"math"
	"reflect"
	"testing"

	"github.com/assertd/assertd"
)

func TestKeep(t *testing.T) {
	old := assertd.Labels{"instance": "a"}
	if got := keep(old, assertd.Labels{"instance": "a"}); reflect.ValueOf(got).Pointer() != reflect.ValueOf(old).Pointer() {
		t.Error("equal labels: the new map was taken")
	}
	changed := assertd.Labels{"instance": "b"}
	if got := keep(old, changed); reflect.ValueOf(got).Pointer() != reflect.ValueOf(changed).Pointer() {
		t.Error("changed labels: the old map was kept")
	}
	if got := keep(nil, map[string]float64{}); got == nil {
		t.Error("no old values: nil kept")
	}
	nan := map[string]float64{"v": math.NaN()}
	if got := keep(nan, map[string]float64{"v": math.NaN()}); reflect.ValueOf(got).Pointer() == reflect.ValueOf(nan).Pointer() {
		t.Error("NaN is not equal to itself: the new map must be taken")
	}
}
