# vllm-ts serving image (docs/deployment.md): a CUDA devel stage builds the CPU and
# CUDA libraries and the TypeScript; a CUDA runtime stage (cudart, cuBLASLt, NCCL)
# runs `vllm-ts serve`. Arguments of `docker run` are the model and its flags:
#   docker build -t vllm-ts .
#   docker run --gpus all -p 8000:8000 -v /models:/models vllm-ts /models/Llama-3-8B --tensor-parallel-size 2
# NOTE: the CPU kernels are compiled with -march=native for the build machine; only
# --device cpu uses them.
ARG CUDA_VERSION=13.0.1
ARG UBUNTU=ubuntu24.04

FROM node:22-bookworm-slim AS node

FROM nvidia/cuda:${CUDA_VERSION}-devel-${UBUNTU} AS build
RUN apt-get update && apt-get install -y --no-install-recommends g++ make python3 ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
WORKDIR /app
COPY . .
# npm ci compiles the CPU kernels (install) and the TypeScript (prepare); then the
# CUDA kernels for sm_80 and sm_90a (VLLM_TS_CUDA_ARCHS to change), then dev deps go.
RUN npm ci --no-audit --no-fund && npm run build:cuda && npm prune --omit=dev

FROM nvidia/cuda:${CUDA_VERSION}-runtime-${UBUNTU}
# NCCL for --tensor-parallel-size: the runtime image's libnccl2, installed if missing.
RUN (ldconfig -p | grep -q 'libnccl\.so\.2') || \
    (apt-get update && apt-get install -y --no-install-recommends libnccl2 && rm -rf /var/lib/apt/lists/*)
COPY --from=node /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/build/libvllm_cpu.so /app/build/libvllm_cuda.so ./build/
COPY --from=build /app/static ./static
COPY --from=build /app/models ./models
# NVLink multicast off (vllm-ts sets it for every rank too).
ENV NCCL_NVLS_ENABLE=0
EXPOSE 8000
ENTRYPOINT ["node", "dist/entrypoints/cli/main.js", "serve"]
