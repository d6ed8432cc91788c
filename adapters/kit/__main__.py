from adapters.kit.cli import main

main()
