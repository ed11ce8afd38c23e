import sys

try:
    from pipeline.cli import main
    code = main()
except KeyboardInterrupt:     # Ctrl-C while the modules load (main() handles it after)
    print("stopped", file=sys.stderr)
    code = 130
sys.exit(code)
