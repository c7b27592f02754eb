{{/* The release's name for its objects. */}}
{{- define "assertd.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "assertd.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "assertd.labels" -}}
{{ include "assertd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
The values that cannot work, refused at render time: an unknown store, more
than one replica on SQLite (one process's file; replicas share PostgreSQL,
docs/HA.md).
*/}}
{{- define "assertd.validate" -}}
{{- if not (has .Values.store.driver (list "sqlite" "postgres")) -}}
{{- fail (printf "store.driver %q: write sqlite or postgres" .Values.store.driver) -}}
{{- end -}}
{{- if gt (int .Values.replicas) 1 -}}
{{- if eq .Values.store.driver "sqlite" -}}
{{- fail (printf "replicas: %d with store.driver sqlite: SQLite is one process's file; write replicas: 1, or use store.driver postgres" (int .Values.replicas)) -}}
{{- end -}}
{{- end -}}
{{- if lt (int .Values.replicas) 1 -}}
{{- fail "replicas: write 1" -}}
{{- end -}}
{{- end -}}

{{/* assertd.yaml: the config values, the rule files and the store. */}}
{{- define "assertd.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $_ := set $cfg "files" (keys .Values.rules | sortAlpha) -}}
{{- if eq .Values.store.driver "postgres" -}}
{{- $_ := set $cfg "store" (dict "driver" "postgres" "dsn_env" "ASSERTD_PG_DSN") -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The pod of either workload. */}}
{{- define "assertd.pod" -}}
metadata:
  labels:
    {{- include "assertd.selectorLabels" . | nindent 4 }}
  annotations:
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    # assertd reloads changed files by itself; a changed Secret needs a restart.
    checksum/env: {{ toJson (list .Values.env .Values.envFromSecrets .Values.store) | sha256sum }}
spec:
  automountServiceAccountToken: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: assertd
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - run
        - --config.file=/etc/assertd/assertd.yaml
        - --storage.path=/var/lib/assertd
        - --web.listen-address=:{{ .Values.service.port }}
        {{- with .Values.externalURL }}
        - --web.external-url={{ . }}
        {{- end }}
        - --log.format={{ .Values.logFormat }}
        - --log.level={{ .Values.logLevel }}
        {{- with .Values.extraArgs }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: http
          containerPort: {{ .Values.service.port }}
      env:
        {{- range .Values.env }}
        - name: {{ .name }}
          valueFrom:
            secretKeyRef: {name: {{ .secretName }}, key: {{ .key }}}
        {{- end }}
        {{- if eq .Values.store.driver "postgres" }}
        - name: ASSERTD_PG_DSN
          valueFrom:
            secretKeyRef: {name: {{ .Values.store.postgres.dsnSecret.name }}, key: {{ .Values.store.postgres.dsnSecret.key }}}
        {{- end }}
      {{- with .Values.envFromSecrets }}
      envFrom:
        {{- range . }}
        - secretRef: {name: {{ . }}}
        {{- end }}
      {{- end }}
      livenessProbe:
        httpGet: {path: /-/healthy, port: http}
        periodSeconds: 10
        failureThreshold: 6
      readinessProbe:
        httpGet: {path: /-/ready, port: http}
        periodSeconds: 5
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      volumeMounts:
        - {name: config, mountPath: /etc/assertd, readOnly: true}
        - {name: data, mountPath: /var/lib/assertd}
        - {name: tmp, mountPath: /tmp}
  volumes:
    - name: config
      configMap:
        name: {{ include "assertd.fullname" . }}
    - name: tmp
      emptyDir: {}
    {{- if eq .Values.store.driver "postgres" }}
    # With PostgreSQL the state is there; the embedded TSDB keeps its
    # samples here until the pod goes (use a sources.prometheus source).
    - name: data
      emptyDir: {}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
