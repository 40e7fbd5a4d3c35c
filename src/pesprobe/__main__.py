from pesprobe.cli import main

main()
