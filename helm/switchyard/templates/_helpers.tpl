{{/* Names, labels and the rendered Switchyard configuration. */}}

{{- define "switchyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "switchyard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The five services, in pipeline order. */}}
{{- define "switchyard.services" -}}
{{- toJson (list "ingest" "transform" "dedupe" "deliver" "monitor") -}}
{{- end -}}

{{- define "switchyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "switchyard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "switchyard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchyard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of one component: call with (dict "root" $ "component" "ingest"). */}}
{{- define "switchyard.componentLabels" -}}
{{ include "switchyard.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "switchyard.componentSelector" -}}
{{ include "switchyard.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "switchyard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "switchyard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "switchyard.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "switchyard.natsUrl" -}}
{{- required "externalNats.url is required (NATS runs beside the chart; docs/deploy.md)" .Values.externalNats.url -}}
{{- end -}}

{{/*
The configuration file every service reads: the user's `config` with what the chart owns set on
top (prefix, NATS URL and TLS files, listen addresses inside the pod).
*/}}
{{- define "switchyard.config" -}}
{{- $c := deepCopy .Values.config -}}
{{- $_ := set $c "prefix" .Values.prefix -}}
{{- $nats := deepCopy (default dict $c.nats) -}}
{{- $_ := set $nats "url" (include "switchyard.natsUrl" .) -}}
{{- if .Values.externalNats.tls.enabled -}}
{{- $tls := dict "ca_file" "/etc/switchyard/nats-tls/ca.crt" "required" .Values.externalNats.tls.required -}}
{{- if .Values.externalNats.tls.mutual -}}
{{- $_ := set $tls "cert_file" "/etc/switchyard/nats-tls/tls.crt" -}}
{{- $_ := set $tls "key_file" "/etc/switchyard/nats-tls/tls.key" -}}
{{- end -}}
{{- $_ := set $nats "tls" $tls -}}
{{- end -}}
{{- if .Values.externalNats.credsSecret -}}
{{- if .Values.externalNats.auth.enabled -}}
{{- fail "externalNats.credsSecret and externalNats.auth.enabled exclude each other" -}}
{{- end -}}
{{- $_ := set $nats "creds_file" "/etc/switchyard/nats-creds/nats.creds" -}}
{{- end -}}
{{- $_ := set $c "nats" $nats -}}
{{- $ops := printf "0.0.0.0:%v" .Values.ports.ops -}}
{{- $ingest := deepCopy (default dict $c.ingest) -}}
{{- $_ := set $ingest "listen" (printf "0.0.0.0:%v" .Values.ports.http) -}}
{{- $_ := set $ingest "ops_listen" $ops -}}
{{- $_ := set $c "ingest" $ingest -}}
{{- range $svc := list "transform" "dedupe" "deliver" "monitor" -}}
{{- $s := deepCopy (default dict (index $c $svc)) -}}
{{- $_ := set $s "ops_listen" $ops -}}
{{- if eq $svc "monitor" -}}
{{- $_ := set $s "admin_listen" (printf "0.0.0.0:%v" $.Values.ports.admin) -}}
{{- if $.Values.dashboard.enabled -}}
{{- $_ := set $s "dashboard_listen" (printf "0.0.0.0:%v" $.Values.dashboard.port) -}}
{{- end -}}
{{- if $.Values.alerts.webhook.existingSecret -}}
{{- /* The URL and the signing secret reach only monitor, as environment variables from the Secret. */ -}}
{{- $alerts := deepCopy (default dict $s.alerts) -}}
{{- $_ := unset $alerts "webhook_url" -}}
{{- $_ := set $alerts "webhook_url_env" "SWITCHYARD_ALERTS_WEBHOOK_URL" -}}
{{- $_ := set $alerts "webhook_secret_env" "SWITCHYARD_ALERTS_WEBHOOK_SECRET" -}}
{{- $_ := set $s "alerts" $alerts -}}
{{- end -}}
{{- end -}}
{{- $_ := set $c $svc $s -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}
