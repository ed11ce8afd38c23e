# MaskWatch as a Hugging Face Docker Space (sdk: docker, app_port: 8501). See docs/DEPLOY.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Debian packages listed in packages.txt (one per line, '#' comments allowed). It is empty on
# purpose: the pinned wheels (torch, opencv-python-headless, av, aiortc) bundle their native
# libraries and need only libc6, libgcc-s1, libstdc++6 and zlib1g, which the base image has.
COPY packages.txt /tmp/packages.txt
RUN pkgs="$(sed -e 's/#.*//' /tmp/packages.txt | xargs)"; \
    if [ -n "$pkgs" ]; then \
      apt-get update && apt-get install -y --no-install-recommends $pkgs && \
      rm -rf /var/lib/apt/lists/*; \
    fi

# Hugging Face runs the container as uid 1000.
RUN useradd -m -u 1000 user
WORKDIR /home/user/app

# torch==2.13.0 from PyPI is the CUDA build (works on CPU and GPU hardware, but large). For a
# CPU-only Space, set the Space variable TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# (Space variables are passed as build arguments) to install the much smaller CPU wheel.
ARG TORCH_INDEX_URL=""
COPY requirements.txt .
RUN pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -r requirements.txt

COPY --chown=user . .
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    HF_HOME=/home/user/.cache/huggingface \
    STREAMLIT_RUNNER_FAST_RERUNS=false \
    OMP_WAIT_POLICY=PASSIVE \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)" || exit 1
CMD ["streamlit", "run", "app.py", "--server.port", "8501", "--server.address", "0.0.0.0"]
