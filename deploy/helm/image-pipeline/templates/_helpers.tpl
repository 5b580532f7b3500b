{{/* Names: every object is "<fullname>-<component>"; fullname is the release name unless overridden. */}}
{{- define "image-pipeline.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "image-pipeline.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "gateway") */}}
{{- define "image-pipeline.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* "repository:tag" of an image block; the tag defaults to the chart's appVersion: (dict "root" $ "image" BLOCK) */}}
{{- define "image-pipeline.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* The headless Service the gateway resolves: one DNS record per ready inference pod. */}}
{{- define "image-pipeline.inferenceHeadless" -}}
{{- printf "%s-inference-headless" (include "image-pipeline.fullname" .) -}}
{{- end -}}

{{/* The Secret the chart creates for values given inline (database.url, s3 keys, ...). */}}
{{- define "image-pipeline.gatewaySecret" -}}
{{- printf "%s-gateway" (include "image-pipeline.fullname" .) -}}
{{- end -}}

{{- define "image-pipeline.modelsClaim" -}}
{{- default (printf "%s-models" (include "image-pipeline.fullname" .)) .Values.models.existingClaim -}}
{{- end -}}

{{/*
One env entry read from a Secret: (dict "root" $ "env" NAME "name" ENTRY "required" BOOL), where ENTRY
names a block of gateway.secrets ({value, existingSecret, key}). An inline value lives in the chart's
Secret under the key "<entry>"; otherwise existingSecret/key is referenced; a missing required one
fails the render with a sentence saying what to set. A value never appears in a pod spec.
*/}}
{{- define "image-pipeline.secretEnv" -}}
{{- $entry := get .root.Values.gateway.secrets .name -}}
{{- if $entry.value }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "image-pipeline.gatewaySecret" .root }}
      key: {{ .name }}
{{- else if $entry.existingSecret }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ $entry.existingSecret }}
      key: {{ required (printf "gateway.secrets.%s.key is required with existingSecret" .name) $entry.key }}
{{- else if .required }}
{{- fail (printf "%s is required: set gateway.secrets.%s.value (the chart creates a Secret) or gateway.secrets.%s.existingSecret" .env .name .name) }}
{{- end }}
{{- end -}}

{{/* Resources of the inference container: explicit values win, else gpu.resources plus the GPUs
(a limit only: an extended resource's request defaults to it), else the row for the precision. */}}
{{- define "image-pipeline.inferenceResources" -}}
{{- $inference := .Values.inference -}}
{{- if $inference.resources -}}
{{ toYaml $inference.resources }}
{{- else if $inference.gpu.enabled -}}
{{- $limits := merge (dict "nvidia.com/gpu" $inference.gpu.count) (deepCopy ($inference.gpu.resources.limits | default dict)) -}}
{{ toYaml (merge (dict "limits" $limits) (deepCopy $inference.gpu.resources)) }}
{{- else -}}
{{ toYaml (get $inference.resourcesByPrecision $inference.precision) }}
{{- end -}}
{{- end -}}

{{/* The inference image: the GPU build when gpu.enabled. */}}
{{- define "image-pipeline.inferenceImage" -}}
{{- $inference := .Values.inference -}}
{{- include "image-pipeline.image" (dict "root" . "image" (ternary $inference.gpu.image $inference.image $inference.gpu.enabled)) -}}
{{- end -}}

{{- define "image-pipeline.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.uid }}
runAsGroup: {{ .Values.securityContext.gid }}
fsGroup: {{ .Values.securityContext.gid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "image-pipeline.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
