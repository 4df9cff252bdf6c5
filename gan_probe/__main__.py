from gan_probe.cli import main

main()
