{{/* Environment shared by the export Job and the inference pods: they must agree on the model folder. */}}
{{- define "image-pipeline.modelEnv" -}}
- name: INFERENCE_MODEL
  value: {{ .Values.inference.model | quote }}
- name: INFERENCE_PRECISION
  value: {{ .Values.inference.precision | quote }}
- name: INFERENCE_MODEL_DIR
  value: /models
{{- end -}}

{{/*
Python that prints the folder the inference service loads, by the service's own rule
(inference.model_source.cache_dir_for): "<model id, / as -->-<precision>" under INFERENCE_MODEL_DIR.
*/}}
{{- define "image-pipeline.modelFolderPython" -}}
from inference.model_source import cache_dir_for; from inference.settings import InferenceSettings; print(cache_dir_for(InferenceSettings()))
{{- end -}}
