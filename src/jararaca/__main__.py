from jararaca.cli import main

main()
