from soundmind_data.cli import main

main()
