{{- define "homeostat.fullname" -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "homeostat.labels" -}}
app.kubernetes.io/name: {{ default .Chart.Name .Values.nameOverride }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "homeostat.selector" -}}
app.kubernetes.io/name: {{ default .Chart.Name .Values.nameOverride }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "homeostat.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else if .Values.secrets.create -}}
{{- include "homeostat.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* Secret keys and the HOMEOSTAT_* variable each becomes. */}}
{{- define "homeostat.secretEnv" -}}
alertmanagerBearerToken: HOMEOSTAT_ALERTMANAGER__BEARER_TOKEN
webhooksBearerToken: HOMEOSTAT_WEBHOOKS__BEARER_TOKEN
gitlabToken: HOMEOSTAT_WEBHOOKS__GITLAB_TOKEN
pagerdutyRoutingKey: HOMEOSTAT_PAGING__ROUTING_KEY
jiraToken: HOMEOSTAT_TICKETING__TOKEN
slackBotToken: HOMEOSTAT_SLACK__BOT_TOKEN
slackSigningSecret: HOMEOSTAT_SLACK__SIGNING_SECRET
operatorTokens: HOMEOSTAT_API__TOKENS
{{- end -}}

{{/* The folder rules, plans and playbooks are read from: ConfigMaps, or the git checkout. */}}
{{- define "homeostat.folder" -}}
{{- $root := index . 0 -}}{{- $kind := index . 1 -}}
{{- if $root.Values.gitSync.enabled -}}
{{- printf "/git/repo/%s" (index $root.Values.gitSync (printf "%sPath" $kind)) -}}
{{- else -}}
{{- printf "/etc/homeostat/%s" $kind -}}
{{- end -}}
{{- end -}}

{{- define "homeostat.configMapOf" -}}
{{- $root := index . 0 -}}{{- $kind := index . 1 -}}
{{- $values := index $root.Values $kind -}}
{{- default (printf "%s-%s" (include "homeostat.fullname" $root) $kind) $values.existingConfigMap -}}
{{- end -}}

{{/* One pod of a component ("ingest" or "worker"). */}}
{{- define "homeostat.pod" -}}
{{- $root := index . 0 -}}{{- $component := index . 1 -}}
{{- $values := index $root.Values $component -}}
metadata:
  labels:
    {{- include "homeostat.selector" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $component }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  automountServiceAccountToken: false
  enableServiceLinks: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    runAsGroup: 10001
    fsGroup: 10001
    seccompProfile:
      type: RuntimeDefault
  {{- with $root.Values.image.pullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: homeostat
      image: "{{ $root.Values.image.repository }}:{{ $root.Values.image.tag | default $root.Chart.AppVersion }}"
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: ["up", "--role", {{ $component | quote }}, "--config", "/etc/homeostat/config/homeostat.yaml"]
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
      env:
        - name: HOME
          value: /tmp
        {{- $secret := include "homeostat.secretName" $root }}
        {{- if $secret }}
        {{- range $key, $variable := include "homeostat.secretEnv" $root | fromYaml }}
        - name: {{ $variable }}
          valueFrom:
            secretKeyRef:
              name: {{ $secret }}
              key: {{ $key }}
              optional: true
        {{- end }}
        {{- end }}
        {{- with $root.Values.temporal.apiKey.existingSecret }}
        - name: HOMEOSTAT_TEMPORAL__API_KEY
          valueFrom:
            secretKeyRef:
              name: {{ . }}
              key: api-key
        {{- end }}
        {{- with $root.Values.kafka.sasl.existingSecret }}
        - name: HOMEOSTAT_KAFKA__SASL_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ . }}
              key: password
        {{- end }}
      ports:
        - name: http
          containerPort: 8080
        - name: temporal-sdk
          containerPort: {{ $root.Values.metrics.sdkPort }}
      startupProbe:
        httpGet: {path: /healthz, port: http}
        periodSeconds: 2
        failureThreshold: 60
      livenessProbe:
        httpGet: {path: /healthz, port: http}
        periodSeconds: 10
      readinessProbe:
        httpGet: {path: /readyz, port: http}
        periodSeconds: 5
      resources:
        {{- toYaml $values.resources | nindent 8 }}
      volumeMounts:
        - {name: config, mountPath: /etc/homeostat/config, readOnly: true}
        - {name: tmp, mountPath: /tmp}
        - {name: state, mountPath: /var/lib/homeostat}
        {{- if $root.Values.gitSync.enabled }}
        - {name: git, mountPath: /git, readOnly: true}
        {{- else }}
        - {name: rules, mountPath: /etc/homeostat/rules, readOnly: true}
        - {name: remediations, mountPath: /etc/homeostat/remediations, readOnly: true}
        - {name: playbooks, mountPath: /etc/homeostat/playbooks, readOnly: true}
        {{- end }}
        {{- if $root.Values.temporal.tls.existingSecret }}
        - {name: temporal-tls, mountPath: /etc/homeostat/temporal-tls, readOnly: true}
        {{- end }}
        {{- if $root.Values.kafka.tls.existingSecret }}
        - {name: kafka-tls, mountPath: /etc/homeostat/kafka-tls, readOnly: true}
        {{- end }}
    {{- if $root.Values.gitSync.enabled }}
    - name: git-sync
      image: {{ $root.Values.gitSync.image }}
      args:
        - --repo={{ required "gitSync.repo is required when gitSync.enabled" $root.Values.gitSync.repo }}
        - --ref={{ $root.Values.gitSync.ref }}
        - --period={{ $root.Values.gitSync.period }}
        - --root=/git
        - --link=repo
      {{- with $root.Values.gitSync.existingSecret }}
      env:
        - name: GITSYNC_USERNAME
          valueFrom: {secretKeyRef: {name: {{ . }}, key: username}}
        - name: GITSYNC_PASSWORD
          valueFrom: {secretKeyRef: {name: {{ . }}, key: password}}
      {{- end }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
      resources:
        requests: {cpu: 10m, memory: 32Mi}
        limits: {memory: 128Mi}
      volumeMounts:
        - {name: git, mountPath: /git}
        - {name: tmp, mountPath: /tmp}
    {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "homeostat.fullname" $root }}
    - name: tmp
      emptyDir: {}
    - name: state
      emptyDir: {}
    {{- if $root.Values.gitSync.enabled }}
    - name: git
      emptyDir: {}
    {{- else }}
    {{- range $kind := list "rules" "remediations" "playbooks" }}
    - name: {{ $kind }}
      configMap:
        name: {{ include "homeostat.configMapOf" (list $root $kind) }}
    {{- end }}
    {{- end }}
    {{- with $root.Values.temporal.tls.existingSecret }}
    - name: temporal-tls
      secret:
        secretName: {{ . }}
    {{- end }}
    {{- with $root.Values.kafka.tls.existingSecret }}
    - name: kafka-tls
      secret:
        secretName: {{ . }}
    {{- end }}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
