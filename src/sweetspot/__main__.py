from sweetspot.cli import main

main()
