# tests/integration/k8s.cmake (owner: ops): offline checks of the Kubernetes deployment.
# check_k8s.py renders k8s/overlays/{dev,prod} with kustomize_lite.py (no cluster, no
# kubectl) and asserts every property docs/operations.md promises; --self-test breaks each
# property and proves its check fails; --crosscheck compares the renderer with
# `kubectl kustomize` where kubectl exists (skipped, exit 77, elsewhere); --npm-schema
# validates against the published Kubernetes API schemas.
set(LG_K8S_CHECK ${CMAKE_CURRENT_LIST_DIR}/k8s/check_k8s.py)
set(LG_SYS_PYTHON /usr/bin/python3) # has PyYAML (python3-yaml); the pyenv python3 may not

add_test(NAME integration.k8s.manifests
         COMMAND ${LG_SYS_PYTHON} ${LG_K8S_CHECK} --root ${PROJECT_SOURCE_DIR})
add_test(NAME integration.k8s.checker_selftest
         COMMAND ${LG_SYS_PYTHON} ${LG_K8S_CHECK} --root ${PROJECT_SOURCE_DIR} --self-test)
add_test(NAME integration.k8s.kustomize_crosscheck
         COMMAND ${LG_SYS_PYTHON} ${LG_K8S_CHECK} --root ${PROJECT_SOURCE_DIR} --crosscheck)
# The published API schemas (npm kubernetes-models + @kubernetes/client-node attribute maps,
# pinned by tests/integration/k8s/package-lock.json); skipped (77) without node_modules.
add_test(NAME integration.k8s.api_schemas
         COMMAND ${LG_SYS_PYTHON} ${LG_K8S_CHECK} --root ${PROJECT_SOURCE_DIR} --npm-schema)
set_tests_properties(integration.k8s.manifests integration.k8s.checker_selftest
                     integration.k8s.kustomize_crosscheck integration.k8s.api_schemas
                     PROPERTIES LABELS integration TIMEOUT 300)
set_tests_properties(integration.k8s.kustomize_crosscheck integration.k8s.api_schemas
                     PROPERTIES SKIP_RETURN_CODE 77)

# The rendered pods' configuration, run for real: llmgate-chat and llmgate-sse started as
# local processes with the environment, ConfigMaps and Secrets the manifests give them must
# start, get ready, serve (dev: a chat with the dev API key) and exit 0 on SIGTERM within
# terminationGracePeriodSeconds.
if(TARGET llmgate-chat AND TARGET llmgate-sse)
  add_test(NAME integration.k8s.pods_run_configured
           COMMAND ${LG_SYS_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/k8s/podsim.py
                   --root ${PROJECT_SOURCE_DIR} --chat $<TARGET_FILE:llmgate-chat>
                   --sse $<TARGET_FILE:llmgate-sse>)
  set_tests_properties(integration.k8s.pods_run_configured
                       PROPERTIES LABELS integration TIMEOUT 600)
endif()
