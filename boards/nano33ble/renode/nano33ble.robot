*** Comments ***
tinysplit on the Arduino Nano 33 BLE (nRF52840) under Renode's nrf52840 model:
the firmware built for boards/nano33ble boots (clocks, UART)
and says HELLO, which carries the board name "nano33ble", on sysbus.uart0.
Run by tests/boards/test_renode.py when renode-test is on PATH:
    renode-test boards/nano33ble/renode/nano33ble.robot \
        --variable ELF:build/nano33ble/tinysplit.elf

*** Variables ***
${ELF}                        ${CURDIR}/../../../build/nano33ble/tinysplit.elf
${UART}                       sysbus.uart0

*** Test Cases ***
Boots And Says Hello
    Execute Command           $elf=@${ELF}
    Execute Command           $port=3468
    Execute Command           include @${CURDIR}/nano33ble.resc
    Create Terminal Tester    ${UART}    timeout=10
    Start Emulation
    Wait For Line On Uart     nano33ble    treatAsRegex=false    includeUnfinishedLine=true
